//! The shared harness lives in `hookwire::testing`; this adds the macro that
//! runs each test once per backend.

pub use hookwire::testing::*;

/// Turns `async fn name() { ... }` items into a module `name` with two tests,
/// `sqlite` and `postgres`, each running the body against that backend.
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$attr:meta])* async fn $name:ident() $body:block )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::support::run_on($crate::support::Backend::Sqlite, async move $body).await
            }

            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::run_on($crate::support::Backend::Postgres, async move $body).await
            }
        }
    )*};
}
