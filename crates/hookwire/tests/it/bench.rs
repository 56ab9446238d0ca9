//! The benchmark's smoke run (`hookwire-bench --smoke`) against this build's
//! binary: every scenario runs with tiny sizes and must deliver every event
//! (but, in the ordered scenario's stuck-chat run, the stuck chat's).
//! It asserts completeness (and that CPU per delivery was measured) only,
//! never a speed.

use clap::Parser;
use std::ffi::OsString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_smoke_run_delivers_every_event() {
    let out = tempfile::TempDir::new().unwrap();
    let opts = hookwire_bench::Options::parse_from([
        OsString::from("hookwire-bench"),
        "--smoke".into(),
        "--out".into(),
        out.path().into(),
    ]);
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hookwire"));
    let r = hookwire_bench::run(opts, bin)
        .await
        .unwrap_or_else(|e| panic!("smoke run failed: {e}"));
    // run() fails unless every delivery arrived; check each scenario ran
    // and nothing arrived twice where exactly once is expected.
    let steady = r["steady"].as_array().expect("steady runs");
    assert_eq!(steady.len(), 2);
    for s in steady {
        assert_eq!(s["duplicates"], 0, "{s}");
        assert!(s["receiver_body_bytes"].as_u64().unwrap() > 900, "{s}");
    }
    assert_eq!(r["fixed"].as_array().unwrap().len(), 1);
    assert_eq!(r["fanout"]["deliveries"], 500);
    assert!(r["isolation"]["with_hung_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["backlog"]["deliveries"], 3_000);
    assert_eq!(r["backlog"]["duplicates"], 0);
    let tenants = r["multitenant"]["runs"]
        .as_array()
        .expect("multi-tenant runs");
    assert_eq!(tenants.len(), 2);
    for m in tenants {
        assert_eq!(m["deliveries"], 2_000, "{m}");
        assert_eq!(m["webhooks"], 200, "{m}");
    }
    // Ordered delivery: 2 modes x (the unordered reference, ordered over
    // each of the 2 chat counts, ordered and unordered with failing first
    // attempts). An ordered run must never let an event arrive after a
    // later one of its chat.
    let ordered = &r["ordered"];
    assert_eq!(ordered["target_cost"], 0.15);
    let ordered_runs = ordered["runs"].as_array().expect("ordered runs");
    assert_eq!(ordered_runs.len(), 10, "{ordered}");
    for o in ordered_runs {
        assert_eq!(o["events"], 1_000, "{o}");
        assert_eq!(o["duplicates"], 0, "{o}");
        if o["ordered"] == true {
            assert_eq!(o["out_of_order"], 0, "{o}");
            assert!(o["ordered_vs_unordered"].is_number(), "{o}");
        }
        if o["first_attempts_fail"] == true {
            assert!(o["first_attempts_to_fail"].as_u64().unwrap() > 0, "{o}");
            assert_eq!(
                o["first_attempts_failed"], o["first_attempts_to_fail"],
                "{o}"
            );
        }
    }
    // The stuck-chat pair over the first count (100 chats): the healthy run
    // delivers every event once; the stuck run every event but chat 0's
    // ten, whose first event was attempted and whose later ones never were.
    let stuck = &ordered["stuck_chat"];
    assert_eq!(stuck["target_ratio"], 0.9, "{stuck}");
    assert!(stuck["ratio"].is_number(), "{stuck}");
    assert_eq!(stuck["stuck_chat_events"], 10, "{stuck}");
    let pair = stuck["runs"].as_array().expect("the stuck-chat pair");
    assert_eq!(pair.len(), 2, "{stuck}");
    for o in pair {
        assert_eq!(o["events"], 1_000, "{o}");
        assert_eq!(o["duplicates"], 0, "{o}");
        assert_eq!(o["out_of_order"], 0, "{o}");
        if o["stuck_chat"].is_null() {
            assert_eq!(o["delivered"], 1_000, "{o}");
        } else {
            assert_eq!(o["delivered"], 990, "{o}");
            let chat = &o["stuck_chat"];
            assert_eq!(chat["others_not_exactly_once"], 0, "{o}");
            assert!(chat["first_attempts"].as_u64().unwrap() >= 1, "{o}");
            assert_eq!(chat["later_attempts"], 0, "{o}");
            assert_eq!(chat["delivered"], 0, "{o}");
        }
        assert!(o["cpu_us_per_delivery"]["hookwire"].is_number(), "{o}");
    }
    let soak = &r["soak"];
    assert_eq!(soak["complete"], true, "{soak}");
    assert_eq!(
        soak["delivered"]["healthy"],
        serde_json::json!([1_000, 1_000])
    );
    assert!(soak["samples"].as_array().unwrap().len() >= 2, "{soak}");
    // CPU per delivery is measured for every process of every scenario
    // (a figure, not a speed: ticks are 10 ms, so it may read 0 here).
    let cpus = steady
        .iter()
        .chain(tenants)
        .chain(ordered_runs)
        .map(|s| &s["cpu_us_per_delivery"])
        .chain([
            &r["baseline"]["cpu_us_per_delivery"],
            &soak["cpu_us_per_delivery"],
        ]);
    for cpu in cpus {
        for process in ["generator", "receiver", "total"] {
            assert!(cpu[process].is_number(), "{process}: {cpu}");
        }
    }
    for s in steady.iter().chain(tenants).chain(ordered_runs) {
        assert!(s["cpu_us_per_delivery"]["hookwire"].is_number(), "{s}");
    }
}
