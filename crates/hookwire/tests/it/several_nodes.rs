//! PostgreSQL with several nodes: shared work, a node killed mid-load, a
//! database outage. These run only on PostgreSQL. (A dead node's work is
//! resumed through heartbeats, whatever the lease: see `takeover.rs`.)

use crate::support::*;
use hookwire::config::DatabaseUrl;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long after the kill the receiver may still be reading what the
/// killed node wrote before it: well inside the 5 s (`DEAD_AFTER`) before
/// another node may take its work over.
const KILLED_NODES_REQUESTS_LAND_WITHIN: Duration = Duration::from_secs(1);

fn start_node(dir: &std::path::Path, database: &str) -> Serving {
    start_node_with(dir, database, &[])
}

/// [`start_node`] with more settings (later ones win).
fn start_node_with(dir: &std::path::Path, database: &str, env: &[(&str, &str)]) -> Serving {
    let mut command = serve_command();
    command
        .args(["--database", database, "--data-dir"])
        .arg(dir)
        // A minute, as by default: what the killed node held comes back by
        // a takeover, not by its leases running out.
        .env("HOOKWIRE_LEASE", "60s")
        .env("HOOKWIRE_ATTEMPT_TIMEOUT", "5s")
        .env("HOOKWIRE_PER_TARGET_CONCURRENCY", "8")
        .env("HOOKWIRE_POLL_INTERVAL", "200ms")
        .env("HOOKWIRE_PG_POOL_SIZE", "6")
        .env("HOOKWIRE_LOG", "warn")
        .envs(env.iter().copied());
    Serving::spawn(command).expect("hookwire starts")
}

/// A node cluster for a test: its data dir (kept while the test runs), its
/// nodes, a ledger receiver, the database URL.
type Cluster = (tempfile::TempDir, Vec<Serving>, LedgerReceiver, String);

/// `n` nodes on one fresh database, and a ledger receiver.
async fn cluster(n: usize) -> Cluster {
    let dir = tempfile::TempDir::new().unwrap();
    let DatabaseUrl::Postgres(url) = fresh_database(&dir).await else {
        unreachable!()
    };
    let database = url.expose().to_string();
    // A short pause keeps each attempt in flight for a moment, so two
    // nodes sending one event at once would overlap at the receiver.
    let receiver = LedgerReceiver::start(|_| Duration::from_millis(3)).await;
    let nodes = (0..n).map(|_| start_node(dir.path(), &database)).collect();
    (dir, nodes, receiver, database)
}

/// Creates `license` through `node`; answers its API key.
async fn create_license(http: &reqwest::Client, node: &Serving, license: &str) -> String {
    let created: Value = http
        .post(format!("{}/api/v1/licenses", node.url))
        .bearer_auth(PLATFORM_KEY)
        .json(&json!({ "license_id": license }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["api_key"].as_str().unwrap().to_string()
}

/// Creates `license` through the first node and, through the second, a
/// webhook to `receiver` for each of `event_types` (data type `visitor`);
/// answers the license's API key.
async fn license_with_webhooks(
    http: &reqwest::Client,
    nodes: &[Serving],
    license: &str,
    event_types: &[&str],
    receiver: &str,
) -> String {
    let key = create_license(http, &nodes[0], license).await;
    for event_type in event_types {
        let r = http
            .post(format!("{}/webhooks", nodes[1].url))
            .bearer_auth(&key)
            .json(&json!({"event_type": event_type, "data_types": ["visitor"], "url": receiver}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_a_kill() {
    run_on(
        Backend::Postgres,
        three_nodes_share_the_work_and_survive_a_kill_body(),
    )
    .await
}

async fn three_nodes_share_the_work_and_survive_a_kill_body() {
    let (_dir, mut nodes, ledger, database) = cluster(3).await;
    let http = reqwest::Client::new();
    license_with_webhooks(&http, &nodes, "3", &["visitor_queued"], &ledger.url).await;

    // Three clients, one per node, 1,000 events each in batches of 50.
    let mut clients = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let (http, url) = (http.clone(), node.url.clone());
        clients.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for b in 0..20 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| json!({"event_type": "visitor_queued", "license_id": "3", "visitor": {"id": format!("{n}-{b}-{i}")}}))
                    .collect();
                let Ok(r) = http.post(format!("{url}/api/v1/events/batch")).bearer_auth(PLATFORM_KEY).json(&batch).send().await else { break };
                let Ok(body) = r.json::<Value>().await else { break };
                for item in body["results"].as_array().unwrap() {
                    assert_eq!(item["status"], 202, "{item}");
                    accepted.push(item["id"].as_str().unwrap().to_string());
                }
            }
            accepted
        }));
    }
    // Kill the middle node once deliveries are flowing.
    eventually(
        "600 events to arrive",
        Duration::from_secs(60),
        async || match ledger.distinct() {
            n if n >= 600 => Ok(()),
            n => Err(format!("{n} arrived")),
        },
    )
    .await;
    nodes[1].kill();
    let killed_at = Instant::now();
    let mut accepted = HashSet::new();
    for c in clients {
        accepted.extend(c.await.unwrap());
    }
    assert!(accepted.len() >= 2000, "only {} accepted", accepted.len());

    eventually(
        "every accepted event to arrive",
        Duration::from_secs(60),
        async || {
            let arrived = ledger.counts();
            match accepted
                .iter()
                .filter(|id| !arrived.contains_key(*id))
                .count()
            {
                0 => Ok(()),
                missing => Err(format!("{missing} accepted events missing")),
            }
        },
    )
    .await;
    let overlaps = ledger.overlaps();
    assert!(
        overlaps.is_empty(),
        "delivered twice at the same time: {overlaps:?}"
    );

    // The database agrees: every delivery ended delivered.
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // An attempt the killed node made but never recorded is made again once
    // its lease is taken over, so the database may need a few seconds to agree.
    let total = eventually(
        "every delivery to end delivered",
        Duration::from_secs(30),
        async || {
            let row = client
                .query_one(
                    "SELECT count(*) FILTER (WHERE state <> 'delivered'), count(*) FROM deliveries",
                    &[],
                )
                .await
                .unwrap();
            let (undelivered, total): (i64, i64) = (row.get(0), row.get(1));
            match undelivered {
                0 => Ok(total),
                _ => Err(format!("{undelivered} of {total} deliveries not delivered")),
            }
        },
    )
    .await;
    // No two recorded attempts of one delivery overlapped in time.
    let overlapping: i64 = client
        .query_one(
            "SELECT count(*) FROM attempts a JOIN attempts b
               ON a.delivery_id = b.delivery_id AND a.id < b.id
              AND b.at - b.latency_ms < a.at AND a.at - a.latency_ms < b.at",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(overlapping, 0);
    // Every repeat is explained. Live nodes record every attempt, so an
    // arrival the database has no attempt for was made by the killed node,
    // before the kill, and at most one per event (the node died holding it).
    // A recorded repeat needs a recorded failure before it (a timeout on a
    // busy machine: the receiver may have read the request the sender gave
    // up on).
    let rows = client
        .query(
            "SELECT e.unique_id, count(a.id),
                    count(a.id) FILTER (WHERE a.error IS NOT NULL OR a.status <> 200)
               FROM events e JOIN deliveries d ON d.event_seq = e.seq
               LEFT JOIN attempts a ON a.delivery_id = d.id
              GROUP BY e.unique_id",
            &[],
        )
        .await
        .unwrap();
    let recorded: HashMap<String, (i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let first_arrived = ledger.first_arrivals();
    for (id, &arrivals) in ledger.counts().iter().filter(|(_, n)| **n > 1) {
        let Some(&(attempts, failed)) = recorded.get(id) else {
            panic!("event {id:?} arrived {arrivals} times and is not in the database");
        };
        let unrecorded = arrivals as i64 - attempts;
        // The killed node's last requests were written before the kill but
        // may be read by the receiver a little after it (this process is busy
        // too); no live node can take a delivery over that early.
        let by_the_killed_node = first_arrived[id] < killed_at + KILLED_NODES_REQUESTS_LAND_WITHIN;
        assert!(
            unrecorded <= 1 && (unrecorded < 1 || by_the_killed_node),
            "event {id} arrived {arrivals} times, {attempts} attempts recorded, first {:?} after the kill",
            first_arrived[id].checked_duration_since(killed_at)
        );
        assert!(
            attempts - 1 <= failed,
            "event {id} was delivered {attempts} times with {failed} failed attempts recorded"
        );
    }
    // Every accepted event is there; beyond them, at most the batch the
    // killed node's client had in flight: committed, but the node died before
    // its 202 went out (the platform sees an error and sends it again).
    assert!(
        (accepted.len()..=accepted.len() + 50).contains(&(total as usize)),
        "{total} deliveries for {} accepted events",
        accepted.len()
    );
    drop(nodes); // killed on drop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_survived() {
    run_on(Backend::Postgres, a_database_outage_is_survived_body()).await
}

async fn a_database_outage_is_survived_body() {
    let cluster =
        hookwire::testing::postgres::Dedicated::start().expect("a PostgreSQL cluster of our own");
    let app = spawn_app_with(|s| {
        s.database = DatabaseUrl::Postgres(hookwire::secret::Secret::new(cluster.url("postgres")))
    })
    .await;
    let key = app.create_license("4").await;
    let mut receiver = TestReceiver::start().await;
    app.create_webhook(&key, "chat_started", &[], &receiver.url("/"))
        .await;
    app.ingest_accepted(&chat_started("4")).await;
    receiver.next().await;

    assert!(cluster.down());
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let (status, body) = app.ingest(&chat_started("4")).await;
    assert_eq!(
        status, 503,
        "never a 202 while the database is down: {body}"
    );
    assert_eq!(body["error"]["code"], "unavailable");

    assert!(cluster.up());
    eventually("ready again", Duration::from_secs(20), async || {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        match r.status().as_u16() {
            200 => Ok(()),
            status => Err(format!("/readyz answers {status}")),
        }
    })
    .await;
    let id = app.ingest_accepted(&chat_started("4")).await;
    assert_eq!(receiver.next().await.json()["event_unique_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_agree_on_the_tag_rule_and_idempotency_under_load() {
    run_on(
        Backend::Postgres,
        two_nodes_agree_on_the_tag_rule_and_idempotency_under_load_body(),
    )
    .await
}

/// Each node writes the events that arrive together in one set-based
/// transaction; concurrent groups on two nodes must still decide the
/// `chat_changed` rule and idempotency keys as if events came one at a time.
async fn two_nodes_agree_on_the_tag_rule_and_idempotency_under_load_body() {
    let (_dir, nodes, ledger, _) = cluster(2).await;
    let http = reqwest::Client::new();
    let webhooks = ["chat_changed", "visitor_queued"];
    let key = license_with_webhooks(&http, &nodes, "7", &webhooks, &ledger.url).await;

    // 20 chats never seen, each reported 10 times with the same tags, all at
    // once through both nodes: exactly one report per chat is a change.
    // Meanwhile 20 reports carry one Idempotency-Key: exactly one event.
    let mut requests = Vec::new();
    for i in 0..200 {
        let (http, node) = (http.clone(), nodes[i % 2].url.clone());
        let chat = format!("C{}", i % 20);
        requests.push(tokio::spawn(async move {
            let event = json!({"event_type": "chat_changed", "license_id": "7",
                               "chat": {"id": chat, "tags": ["vip"]}, "visitor": {"id": format!("V{i}")}});
            let r = http.post(format!("{node}/api/v1/events")).bearer_auth(PLATFORM_KEY).json(&event).send().await.unwrap();
            let body: Value = r.json().await.unwrap();
            (chat, body["deliveries"].as_u64().expect("accepted"))
        }));
    }
    let mut keyed = Vec::new();
    for i in 0..20 {
        let (http, node) = (http.clone(), nodes[i % 2].url.clone());
        keyed.push(tokio::spawn(async move {
            let event =
                json!({"event_type": "visitor_queued", "license_id": "7", "visitor": {"id": "K"}});
            let r = http
                .post(format!("{node}/api/v1/events"))
                .bearer_auth(PLATFORM_KEY)
                .header("Idempotency-Key", "once")
                .json(&event)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut changes: HashMap<String, u64> = HashMap::new();
    for r in requests {
        let (chat, deliveries) = r.await.unwrap();
        *changes.entry(chat).or_default() += deliveries;
    }
    assert_eq!(changes.len(), 20);
    assert!(changes.values().all(|n| *n == 1), "{changes:?}");
    let mut ids = HashSet::new();
    for k in keyed {
        ids.insert(k.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "one event for one key: {ids:?}");

    // And the receiver gets exactly those 21 events.
    eventually(
        "21 events to arrive",
        Duration::from_secs(30),
        async || match ledger.distinct() {
            n if n >= 21 => Ok(()),
            n => Err(format!("{n} arrived")),
        },
    )
    .await;
    // Once nothing is pending nothing more is sent: any event beyond the 21
    // has arrived by then.
    wait_nothing_pending(&http, &nodes[0].url, &key).await;
    let arrived = ledger.counts();
    assert_eq!(arrived.len(), 21);
    assert!(arrived.contains_key(ids.iter().next().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_each_chats_order_through_a_kill() {
    run_on(
        Backend::Postgres,
        three_nodes_keep_each_chats_order_through_a_kill_body(),
    )
    .await
}

/// An ordered webhook on three nodes, chats' events reported through two of
/// them while a receiver fails the first attempt of every fifth event, and
/// the third node (which claims its share of the retries and of the
/// deliveries that waited for one) killed with `kill -9` mid-load.
async fn three_nodes_keep_each_chats_order_through_a_kill_body() {
    let dir = tempfile::TempDir::new().unwrap();
    let DatabaseUrl::Postgres(url) = fresh_database(&dir).await else {
        unreachable!()
    };
    let database = url.expose().to_string();
    // Each answer waits a moment, so two requests of one chat in flight
    // together would be seen overlapping.
    let receiver = LineReceiver::start(Duration::from_millis(4), |body, attempt| {
        let fail_once = body["chat"]["test_mark"].as_str() == Some("fail-once");
        if fail_once && attempt == 1 {
            500
        } else {
            200
        }
    })
    .await;
    let retries = [("HOOKWIRE_RETRY_SCHEDULE", "200ms,200ms,200ms,200ms,200ms")];
    let mut nodes: Vec<Serving> = (0..3)
        .map(|_| start_node_with(dir.path(), &database, &retries))
        .collect();
    let http = reqwest::Client::new();
    let key = create_license(&http, &nodes[0], "5").await;
    let r = http
        .post(format!("{}/api/v1/webhooks", nodes[1].url))
        .bearer_auth(&key)
        .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": receiver.url, "ordered": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Two clients, each with 30 chats of its own, through nodes 0 and 2:
    // 25 batches each, one event per chat, every fifth failing once.
    let mut clients = Vec::new();
    for n in [0usize, 2] {
        let (http, url) = (http.clone(), nodes[n].url.clone());
        clients.push(tokio::spawn(async move {
            let mut accepted: Vec<(String, String)> = Vec::new();
            for b in 0..25 {
                let batch: Vec<Value> = (0..30)
                    .map(|c| {
                        let mark = if (b * 30 + c) % 5 == 0 {
                            "fail-once"
                        } else {
                            ""
                        };
                        json!({"event_type": "chat_started", "license_id": "5",
                               "chat": {"id": format!("{n}-{c}"), "test_mark": mark},
                               "visitor": {"id": "V"}})
                    })
                    .collect();
                let r = http
                    .post(format!("{url}/api/v1/events/batch"))
                    .bearer_auth(PLATFORM_KEY)
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                let body: Value = r.json().await.unwrap();
                for (item, event) in body["results"].as_array().unwrap().iter().zip(&batch) {
                    assert_eq!(item["status"], 202, "{item}");
                    let chat = event["chat"]["id"].as_str().unwrap().to_string();
                    accepted.push((chat, item["id"].as_str().unwrap().to_string()));
                }
            }
            accepted
        }));
    }
    eventually(
        "a third of the events to be delivered",
        Duration::from_secs(60),
        async || match receiver.delivered() {
            n if n >= 500 => Ok(()),
            n => Err(format!("{n} delivered")),
        },
    )
    .await;
    nodes[1].kill();
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for c in clients {
        for (chat, id) in c.await.unwrap() {
            sent.entry(chat).or_default().push(id);
        }
    }
    assert_eq!(sent.values().map(Vec::len).sum::<usize>(), 1500);
    eventually(
        "every event to be delivered",
        Duration::from_secs(90),
        async || match receiver.delivered() {
            1500 => Ok(()),
            n => Err(format!("{n} of 1500 delivered")),
        },
    )
    .await;
    let overlaps = receiver.overlaps();
    assert!(
        overlaps.is_empty(),
        "two deliveries of one chat in flight together: {overlaps:?}"
    );
    assert_eq!(
        receiver.delivered_by_key(),
        sent,
        "each chat in ingest order"
    );
    // Not even an attempt came out of turn: the killed node's last attempt
    // may come again (at least once), but nothing later of its chat before it.
    assert_eq!(receiver.attempted_by_key(), sent);
    drop(nodes); // killed on drop
}
