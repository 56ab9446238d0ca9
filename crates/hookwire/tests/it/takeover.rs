//! PostgreSQL only: the work of a node that dies or stalls is resumed within
//! seconds, however long `lease` is, because live nodes take over the leases
//! of a node whose heartbeat stopped; and a stalled node that wakes up does
//! not act on leases that were taken from it. Real `hookwire serve`
//! processes with `lease = 60s` on a fresh database each, and the `Nodes`
//! part of the store's contract (two stores on one database).

use crate::store::{all_of, event, open, visitor_webhook};
use crate::support::*;
use hookwire::config::DatabaseUrl;
use hookwire::server::open_store;
use hookwire::store::{
    now_millis, AlertGuard, AlertKind, AttemptRecord, Beat, DeliveryState, Handoff, NewAlert,
    NextState, NodeTimes, Takeover,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The promise: what a node held when it died is delivered within this.
const RESUMED_WITHIN: Duration = Duration::from_secs(10);

fn start_node(dir: &Path, database: &str, per_target_concurrency: usize) -> Serving {
    let mut command = serve_command();
    command
        .args(["--database", database, "--data-dir"])
        .arg(dir)
        .env("HOOKWIRE_LEASE", "60s")
        .env(
            "HOOKWIRE_PER_TARGET_CONCURRENCY",
            per_target_concurrency.to_string(),
        )
        .env("HOOKWIRE_POLL_INTERVAL", "200ms")
        .env("HOOKWIRE_PG_POOL_SIZE", "4")
        .env("HOOKWIRE_LOG", "warn");
    Serving::spawn(command).expect("hookwire starts")
}

/// A test's database, its data directory (shared by its nodes: they need
/// the same keys) and a SQL connection to look behind hookwire's back.
struct Cluster {
    dir: tempfile::TempDir,
    database: String,
    sql: tokio_postgres::Client,
    http: reqwest::Client,
}

async fn cluster() -> Cluster {
    let dir = tempfile::TempDir::new().unwrap();
    let DatabaseUrl::Postgres(url) = fresh_database(&dir).await else {
        unreachable!("run on PostgreSQL")
    };
    let database = url.expose().to_string();
    let (sql, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    Cluster {
        dir,
        database,
        sql,
        http: reqwest::Client::new(),
    }
}

impl Cluster {
    fn node(&self, per_target_concurrency: usize) -> Serving {
        start_node(self.dir.path(), &self.database, per_target_concurrency)
    }

    /// A license with a `visitor_queued` webhook to `receiver`, created
    /// through `node`; then `n` events ingested one by one through it, so
    /// their deliveries are leased to it. Answers the events' ids.
    async fn events_through(&self, node: &Serving, receiver: &str, n: usize) -> Vec<String> {
        let key = create_license_at(&self.http, &node.url, "8").await;
        let r = self
            .http
            .post(format!("{}/webhooks", node.url))
            .bearer_auth(&key)
            .json(&json!({"event_type": "visitor_queued", "data_types": ["visitor"], "url": receiver}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(self.event_through(node, &format!("V{i}")).await);
        }
        ids
    }

    /// One more event for that webhook, through `node`; answers its id.
    async fn event_through(&self, node: &Serving, visitor: &str) -> String {
        let event =
            json!({"event_type": "visitor_queued", "license_id": "8", "visitor": {"id": visitor}});
        let r = self
            .http
            .post(format!("{}/api/v1/events", node.url))
            .bearer_auth(PLATFORM_KEY)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    /// How many nodes hold leases on pending deliveries, and how many of
    /// those leases run for at least another 30 s.
    async fn leases(&self) -> (i64, i64) {
        let row = self
            .sql
            .query_one(
                "SELECT count(DISTINCT leased_by), count(*) FILTER (WHERE lease_until > $1)
                 FROM deliveries WHERE state = 'pending'",
                &[&(now_millis() + 30_000)],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// Waits until every delivery is `delivered` in the database.
    async fn all_delivered(&self, within: Duration) {
        eventually(
            "every delivery to be recorded delivered",
            within,
            async || {
                let row = self
                .sql
                .query_one(
                    "SELECT count(*) FILTER (WHERE state <> 'delivered'), count(*) FROM deliveries",
                    &[],
                )
                .await
                .unwrap();
                let (left, total): (i64, i64) = (row.get(0), row.get(1));
                if left == 0 {
                    Ok(())
                } else {
                    Err(format!("{left} of {total} not delivered"))
                }
            },
        )
        .await
    }
}

/// Waits, until `RESUMED_WITHIN` after `since`, for every one of `ids` to
/// have been answered by the receiver.
async fn answered_within(ledger: &LedgerReceiver, ids: &[String], since: Instant, what: &str) {
    let left = RESUMED_WITHIN.saturating_sub(since.elapsed());
    eventually(what, left, async || {
        let answered = ledger.answered();
        match ids.iter().filter(|id| !answered.contains(*id)).count() {
            0 => Ok(()),
            n => Err(format!("{n} of {} not answered yet", ids.len())),
        }
    })
    .await;
    eprintln!("{what}: done {:?} after", since.elapsed());
}

/// The value of a metric line `name` in `node`'s `/metrics`.
async fn metric(http: &reqwest::Client, node: &Serving, name: &str) -> f64 {
    let text = http
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// A receiver whose first two requests hang (a kill catches them in
/// flight) and the rest are answered at once; twenty events ingested through
/// `node`, which then has two attempts in flight and eighteen deliveries
/// queued in its memory, all leased to it for a minute.
async fn twenty_held_by(c: &Cluster, node: &Serving) -> (LedgerReceiver, Vec<String>) {
    let ledger = LedgerReceiver::start(|n| {
        if n < 2 {
            Duration::from_secs(120)
        } else {
            Duration::from_millis(2)
        }
    })
    .await;
    let ids = c.events_through(node, &ledger.url, 20).await;
    eventually(
        "two attempts in flight",
        Duration::from_secs(20),
        async || ledger.arrivals().len() >= 2,
    )
    .await;
    assert_eq!(c.leases().await, (1, 20));
    (ledger, ids)
}

/// After a kill at `killed_at`: every one of `ids` answered within
/// `RESUMED_WITHIN` and recorded delivered, never two attempts of one at
/// once, and only the two in flight at the kill sent twice.
async fn resumed(
    c: &Cluster,
    ledger: &LedgerReceiver,
    ids: &[String],
    killed_at: Instant,
    what: &str,
) {
    answered_within(ledger, ids, killed_at, what).await;
    c.all_delivered(Duration::from_secs(10)).await;
    assert!(ledger.overlaps().is_empty(), "{:?}", ledger.overlaps());
    let twice = ledger.counts().values().filter(|n| **n > 1).count();
    assert!(twice <= 2, "{:?}", ledger.counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_work_is_taken_over_within_seconds() {
    run_on(
        Backend::Postgres,
        a_killed_nodes_work_is_taken_over_within_seconds_body(),
    )
    .await
}

async fn a_killed_nodes_work_is_taken_over_within_seconds_body() {
    let c = cluster().await;
    let mut doomed = c.node(2);
    let survivor = c.node(2);
    let (ledger, ids) = twenty_held_by(&c, &doomed).await;

    doomed.kill();
    let killed_at = Instant::now();
    let what = "the survivor to deliver the dead node's work";
    resumed(&c, &ledger, &ids, killed_at, what).await;
    assert_eq!(
        metric(
            &c.http,
            &survivor,
            "hookwire_leases_taken_over_total{what=\"deliveries\"}"
        )
        .await,
        20.0
    );
    assert_eq!(
        metric(&c.http, &survivor, "hookwire_nodes_alive").await,
        1.0
    );
    assert_eq!(metric(&c.http, &survivor, "hookwire_node_fresh").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_after_a_kill_resumes_its_own_work_within_seconds() {
    run_on(
        Backend::Postgres,
        a_node_restarted_after_a_kill_resumes_its_own_work_within_seconds_body(),
    )
    .await
}

async fn a_node_restarted_after_a_kill_resumes_its_own_work_within_seconds_body() {
    let c = cluster().await;
    let mut node = c.node(2);
    let (ledger, ids) = twenty_held_by(&c, &node).await;

    node.kill();
    let killed_at = Instant::now();
    let restarted = c.node(2);
    let what = "the restarted node to deliver its predecessor's work";
    resumed(&c, &ledger, &ids, killed_at, what).await;
    // The restart is a new node; its predecessor was declared dead.
    let row = c
        .sql
        .query_one("SELECT count(*), count(taken_over_at) FROM nodes", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 1));
    assert_eq!(
        metric(&c.http, &restarted, "hookwire_nodes_alive").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_wakes_without_acting_on_leases_taken_from_it() {
    run_on(
        Backend::Postgres,
        a_paused_node_wakes_without_acting_on_leases_taken_from_it_body(),
    )
    .await
}

/// A frozen process (SIGSTOP: a paused VM, a stalled host) cannot fence
/// itself while frozen; the others take its leases over after its heartbeat
/// goes stale. When it wakes it must act on none of them: the deliveries
/// queued in its memory are forgotten, the one in flight is abandoned
/// unrecorded, and it joins again as a new node.
async fn a_paused_node_wakes_without_acting_on_leases_taken_from_it_body() {
    let c = cluster().await;
    // Every request takes a moment, so the paused node has one in flight.
    let ledger = LedgerReceiver::start(|_| Duration::from_millis(100)).await;
    let paused = c.node(1);
    let other = c.node(4);
    let ids = c.events_through(&paused, &ledger.url, 30).await;
    eventually("a few deliveries", Duration::from_secs(20), async || {
        ledger.answered().len() >= 3
    })
    .await;
    paused.pause();
    let paused_at = Instant::now();
    // Everything it had not delivered is delivered by the other node.
    let delivered_before: HashSet<String> = ledger.answered();
    let rest: Vec<String> = ids
        .iter()
        .filter(|id| !delivered_before.contains(*id))
        .cloned()
        .collect();
    assert!(rest.len() > 10, "{} left", rest.len());
    answered_within(
        &ledger,
        &rest,
        paused_at,
        "the other node to deliver the paused node's work",
    )
    .await;
    // Once the database says every delivery is done, the other node sends
    // nothing more: whatever arrives from now on came from the paused one.
    c.all_delivered(Duration::from_secs(10)).await;
    let arrivals_before_waking = ledger.arrivals().len();

    paused.resume();
    eventually(
        "the woken node to be ready again",
        Duration::from_secs(20),
        async || {
            let r = c
                .http
                .get(format!("{}/readyz", paused.url))
                .send()
                .await
                .unwrap();
            r.status() == 200
        },
    )
    .await;
    assert_eq!(metric(&c.http, &paused, "hookwire_nodes_alive").await, 2.0);
    // It delivers new work; of its old work it sends nothing again: its
    // queue was forgotten, not attempted under leases the other node holds.
    let new = c.event_through(&paused, "after waking").await;
    answered_within(
        &ledger,
        std::slice::from_ref(&new),
        Instant::now(),
        "new work to be delivered",
    )
    .await;
    c.all_delivered(Duration::from_secs(10)).await;
    let after: Vec<String> = ledger.arrivals()[arrivals_before_waking..]
        .iter()
        .map(|a| a.event.clone())
        .collect();
    assert_eq!(after, [new]);
    assert!(ledger.overlaps().is_empty(), "{:?}", ledger.overlaps());
    // Arrived twice at most: the attempt in flight at the pause, and the
    // one before it if its record had not committed yet (a delivered
    // attempt frees its slot first).
    let twice = ledger.counts().values().filter(|n| **n > 1).count();
    assert!(twice <= 2, "{:?}", ledger.counts());
    // It joined again as a new node; its old self was declared dead.
    let row = c
        .sql
        .query_one(
            "SELECT count(*) FILTER (WHERE taken_over_at IS NULL), count(taken_over_at) FROM nodes",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 1));
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_leases_are_freed_once_and_its_records_no_longer_count() {
    run_on(
        Backend::Postgres,
        a_dead_nodes_leases_are_freed_once_and_its_records_no_longer_count_body(),
    )
    .await
}

/// Two stores on one database, as two nodes: `a` holds a handed-off
/// delivery and a claimed alert, stops beating, and `b` takes them over.
async fn a_dead_nodes_leases_are_freed_once_and_its_records_no_longer_count_body() {
    let times = NodeTimes {
        dead_after: Duration::from_millis(500),
        forget_after: Duration::from_secs(1),
    };
    let t = open().await;
    let a = t.store.clone();
    let dir = tempfile::TempDir::new().unwrap();
    let mut settings = test_settings(&dir);
    settings.database = t.database.clone();
    let b = open_store(&settings, false).await.unwrap();
    assert!(a.shared() && b.shared());
    let first = a.join("a", times).await.unwrap();
    assert_eq!(
        first,
        Beat {
            registered: true,
            alive: 1,
            takeover_due: false
        }
    );
    assert_eq!(b.join("b", times).await.unwrap().alive, 2);

    let now = now_millis();
    a.create_license("7", "k7", now).await.unwrap();
    a.create_webhook(visitor_webhook("w", "7", now))
        .await
        .unwrap();
    let handoff = Handoff {
        lease_until: now + 60_000,
        saturated: Arc::default(),
    };
    a.ingest(vec![event("7", "e1", now)], Some(handoff))
        .await
        .unwrap();
    let delivery = a.list_deliveries(all_of("7")).await.unwrap()[0].id;
    let alert = NewAlert {
        id: "msg_1".into(),
        kind: AlertKind::BacklogHigh,
        license_id: None,
        subject: None,
        data: "{}".into(),
        created_at: now,
    };
    assert!(a.insert_alert(alert, AlertGuard::default()).await.unwrap());
    assert_eq!(
        a.claim_alerts(now, 10, now + 60_000).await.unwrap().len(),
        1
    );
    // Leased to `a` for a minute: nothing for `b` to claim.
    assert!(b
        .claim_due(now + 1, 10, now + 60_000, vec![])
        .await
        .unwrap()
        .is_empty());

    // `a` stops beating; `b` keeps on and finds it dead.
    let beat = eventually(
        "a's heartbeat to go stale",
        Duration::from_secs(10),
        async || {
            let beat = b.heartbeat(times).await.unwrap();
            if beat.takeover_due {
                Ok(beat)
            } else {
                Err(format!("{beat:?}"))
            }
        },
    )
    .await;
    assert_eq!(beat.alive, 1);
    let taken = b.take_over(times).await.unwrap();
    assert_eq!(
        taken,
        Takeover {
            nodes: vec!["a".into()],
            deliveries: 1,
            alerts: 1,
            forgotten: 0
        }
    );
    assert_eq!(
        b.take_over(times).await.unwrap(),
        Takeover::default(),
        "freed once"
    );
    assert!(
        !a.heartbeat(times).await.unwrap().registered,
        "a learns it was declared dead"
    );

    // What `a` records or gives back now changes nothing: the leases are `b`'s.
    let later = now_millis();
    let jobs = b
        .claim_due(later, 10, later + 60_000, vec![])
        .await
        .unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.delivery_id).collect::<Vec<_>>(),
        [delivery]
    );
    let record = |at, next| AttemptRecord {
        delivery_id: delivery,
        webhook_id: "w".into(),
        at,
        status: Some(200),
        latency_ms: 3,
        error: None,
        response_excerpt: None,
        next,
        order_key: None,
    };
    a.record_attempt(record(later, NextState::Delivered))
        .await
        .unwrap();
    a.release(vec![delivery], later).await.unwrap();
    let view = a.list_deliveries(all_of("7")).await.unwrap().remove(0);
    assert_eq!(view.state, DeliveryState::Pending);
    assert_eq!(view.attempts.len(), 1, "the attempt is logged: it was made");
    assert!(b
        .claim_due(later + 1, 10, later + 60_000, vec![])
        .await
        .unwrap()
        .is_empty());
    a.record_alert_attempt("msg_1", later, NextState::Delivered, None)
        .await
        .unwrap();
    assert_eq!(
        b.claim_alerts(later, 10, later + 60_000)
            .await
            .unwrap()
            .len(),
        1
    );
    b.record_attempt(record(later + 1, NextState::Delivered))
        .await
        .unwrap();
    let view = b.list_deliveries(all_of("7")).await.unwrap().remove(0);
    assert_eq!(
        (view.state, view.attempts.len()),
        (DeliveryState::Delivered, 2)
    );

    // A dead node's row goes once `forget_after` has passed; `a` joins again
    // as a new node.
    eventually(
        "a's row to be old enough to forget",
        Duration::from_secs(10),
        async || b.heartbeat(times).await.unwrap().takeover_due,
    )
    .await;
    assert_eq!(b.take_over(times).await.unwrap().forgotten, 1);
    let again = a.join("a again", times).await.unwrap();
    assert_eq!((again.registered, again.alive), (true, 2));
}

#[tokio::test]
async fn a_sqlite_node_is_alone() {
    run_on(Backend::Sqlite, async {
        let t = open().await;
        let times = NodeTimes {
            dead_after: Duration::from_secs(5),
            forget_after: Duration::from_secs(60),
        };
        assert!(!t.store.shared());
        assert_eq!(t.store.join("x", times).await.unwrap(), Beat::ALONE);
        assert_eq!(t.store.heartbeat(times).await.unwrap(), Beat::ALONE);
        assert_eq!(t.store.take_over(times).await.unwrap(), Takeover::default());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_its_database_stops_then_resumes_its_work_as_a_new_node() {
    run_on(
        Backend::Postgres,
        a_node_cut_off_from_its_database_stops_then_resumes_its_work_as_a_new_node_body(),
    )
    .await
}

/// Without its heartbeat for longer than the margin, a node stops: the
/// attempt it had in flight is abandoned (another node may take the lease
/// over any moment). When the database is back it joins as a new node,
/// takes over what its old self held, and delivers it at once rather than
/// after its one-minute lease.
async fn a_node_cut_off_from_its_database_stops_then_resumes_its_work_as_a_new_node_body() {
    let cluster =
        hookwire::testing::postgres::Dedicated::start().expect("a PostgreSQL cluster of our own");
    let url = cluster.url("postgres");
    let app = spawn_app_with(|s| {
        s.database = DatabaseUrl::Postgres(hookwire::secret::Secret::new(url.clone()));
        s.delivery.attempt_timeout = Duration::from_secs(30);
    })
    .await;
    // The first request hangs: the outage catches it in flight.
    let ledger = LedgerReceiver::start(|n| {
        if n == 0 {
            Duration::from_secs(120)
        } else {
            Duration::ZERO
        }
    })
    .await;
    let key = app.create_license("9").await;
    app.create_webhook(&key, "chat_started", &[], &ledger.url)
        .await;
    let id = app.ingest_accepted(&chat_started("9")).await;
    eventually(
        "the attempt in flight",
        Duration::from_secs(20),
        async || ledger.arrivals().len() == 1,
    )
    .await;

    assert!(cluster.down());
    let fresh = async || {
        let text = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("hookwire_node_fresh "))
            .map(str::to_string)
    };
    eventually("the node to stop", Duration::from_secs(15), async || {
        fresh().await.filter(|f| f == "0")
    })
    .await;
    assert!(cluster.up());
    let back = Instant::now();
    eventually("ready again", Duration::from_secs(20), async || {
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    answered_within(&ledger, &[id], back, "the delivery to be made again").await;
    let (sql, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = sql
        .query_one(
            "SELECT count(*) FILTER (WHERE taken_over_at IS NULL), count(taken_over_at) FROM nodes",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 1));
}
