//! Shell completions and the man page, generated from the clap definition
//! of the command line ([`crate::cli::Cli`]), so they never fall behind it.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;

/// Writes the completion script for `shell` (`hookwire completions bash`).
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "hookwire", out);
}

/// Writes the roff man page, `hookwire(1)`, with every subcommand listed
/// (`hookwire man > hookwire.1`).
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}
