//! N clients loop through complete work-order life cycles against the real service.
//!
//! Each life cycle: open (clerk) → GET the order (clerk) → claim (staff) → list (clerk, and
//! staff polling open orders) → 3 evidence uploads (staff) → signed verification result
//! (staff) → complete (clerk) → the order's audit events (auditor). 7 state-changing steps
//! and 4 reads. Every client has its own hall staff member, so claims never conflict.
//!
//! With mail on (`--mail file|smtp`), halls and clerks have addresses, so a life cycle writes
//! outbox rows (opened → the hall; claimed, submitted → the clerk; completed → both); after
//! the load the run waits for the server's worker to deliver them all and reports how long
//! that took.
//!
//! The server's `/metrics` is scraped just before the load and again after it (and the outbox
//! drain); the difference of the audit sequencer's delay histogram is what the load's events
//! waited to join the chain.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{join, join_all};
use reqwest::Method;
use serde_json::{json, Value};

use crate::ceiling::{self, Ceiling};
use crate::client::{jpeg, sha256_hex, Api, Stats};
use crate::env::{mib, r2, rss_summary, sample_rss, BenchEnv, CpuSnap};
use crate::mail::{self, Drained};
use crate::metrics::{self, SequencerDelay};
use crate::report::{self, Row};
use crate::signer::HallKey;
use crate::{Backend, Mail, Outcome, Res, ServerArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// Concurrent clients, each looping through life cycles.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// How long the clients run.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Measure the database's ceiling first (same number of clients) and report the ratio.
    #[arg(long)]
    pub with_ceiling: bool,
    /// Length of each ceiling run (default: min(seconds, 30)).
    #[arg(long)]
    pub ceiling_seconds: Option<u64>,
    /// pgbench scale factors of the PostgreSQL ceiling, each measured in turn (comma-separated
    /// or repeated); the throughput target is held against scale 10.
    #[arg(long = "pgbench-scale", value_delimiter = ',', default_values_t = [1u32, 10])]
    pub pgbench_scales: Vec<u32>,
    /// The pgbench binary for the PostgreSQL ceiling.
    #[arg(long)]
    pub pgbench: Option<PathBuf>,
    /// Users created and logged in at once during setup (each login is an argon2 hash of
    /// ~19 MiB: more at once is faster but inflates the server's peak RSS).
    #[arg(long, default_value_t = 1)]
    pub setup_concurrency: usize,
    /// Size of each evidence file, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub evidence_size: usize,
    /// After the load, wait at most this long for the outbox to drain.
    #[arg(long, default_value_t = 120)]
    pub drain_seconds: u64,
}

pub const OPEN: &str = "POST /api/v1/work-orders";
pub const GET: &str = "GET /api/v1/work-orders/{id}";
pub const CLAIM: &str = "POST /api/v1/work-orders/{id}/claim";
pub const LIST_CLERK: &str = "GET /api/v1/work-orders?limit=20 (clerk)";
pub const LIST_STAFF: &str = "GET /api/v1/work-orders?state=open&limit=20 (staff)";
pub const UPLOAD: &str = "POST /api/v1/work-orders/{id}/evidence?kind=";
pub const VERIFY: &str = "POST /api/v1/work-orders/{id}/verification";
pub const COMPLETE: &str = "POST /api/v1/work-orders/{id}/complete";
pub const AUDIT: &str = "GET /api/v1/audit/events?work_order={id} (auditor)";

const KINDS: [&str; 3] = ["id_front", "id_back", "live_photo"];
/// Target cities of the halls (province, city).
const CITIES: [(&str, &str); 5] = [
    ("37", "370100"),
    ("32", "320100"),
    ("33", "330100"),
    ("44", "440100"),
    ("44", "440300"),
];
/// Home provinces of the clerks.
const HOMES: [&str; 4] = ["53", "11", "51", "61"];
const ID_NUMBER: &str = "11010519491231002X";
const NAME: &str = "张三";

struct Hall {
    id: String,
    key: HallKey,
}

struct Person {
    username: String,
    token: String,
    hall: usize,
}

struct World {
    admin: String,
    halls: Vec<Hall>,
    staff: Vec<Person>,
    clerks: Vec<Person>,
    auditor: String,
    next_number: Cell<u64>,
    number_base: u64,
    evidence_size: usize,
}

impl World {
    async fn setup(
        api: &Api,
        clients: usize,
        evidence_size: usize,
        setup_concurrency: usize,
        mail: Mail,
    ) -> Res<Self> {
        let admin = api.login("admin").await?;
        let n_halls = clients.clamp(1, 8);
        let mut halls = Vec::new();
        for i in 0..n_halls {
            let (province, city) = CITIES[i % CITIES.len()];
            let id = api
                .create_hall(&admin, &format!("BENCH-{i:03}"), province, city)
                .await?;
            let key = HallKey::generate(&format!("bench-hall-{i:03}"))?;
            api.expect(
                Method::POST,
                &format!("/api/v1/halls/{id}/keys"),
                Some(&admin),
                Some(&key.register_body()),
                201,
            )
            .await?;
            halls.push(Hall { id, key });
        }
        let n_clerks = clients.clamp(1, HOMES.len());
        // Users are made and logged in `setup_concurrency` at a time: argon2 is deliberately
        // slow, and each hash in flight holds ~19 MiB, which shows in the server's RSS.
        let clerks = in_waves(n_clerks, setup_concurrency, |i| {
            let admin = &admin;
            async move {
                let username = format!("clerk.{}", HOMES[i]);
                // Clerks hear of their orders (claimed, submitted, completed) when mail is on.
                let email = (mail != Mail::None).then(|| format!("{username}@clerks.example.cn"));
                let token = api
                    .user_with_token(
                        admin,
                        &username,
                        "clerk",
                        Some(HOMES[i]),
                        None,
                        email.as_deref(),
                    )
                    .await?;
                Ok::<_, String>(Person {
                    username,
                    token,
                    hall: 0,
                })
            }
        })
        .await?;
        let staff = in_waves(clients, setup_concurrency, |c| {
            let admin = &admin;
            let halls = &halls;
            async move {
                let username = format!("staff.{c:03}");
                let hall = c % halls.len();
                let token = api
                    .user_with_token(
                        admin,
                        &username,
                        "hall_staff",
                        None,
                        Some(&halls[hall].id),
                        None,
                    )
                    .await?;
                Ok::<_, String>(Person {
                    username,
                    token,
                    hall,
                })
            }
        })
        .await?;
        let auditor = api
            .user_with_token(&admin, "auditor", "auditor", None, None, None)
            .await?;
        Ok(Self {
            admin,
            halls,
            staff,
            clerks,
            auditor,
            next_number: Cell::new(0),
            // A random block of numbers, so runs never collide even on a shared database.
            number_base: u64::from(rand::random::<u32>() % 400_000_000),
            evidence_size,
        })
    }

    /// A fresh mainland mobile number (1[3-9] + 9 digits) for every order.
    fn msisdn(&self) -> String {
        let n = self.next_number.get();
        self.next_number.set(n + 1);
        format!("13{:09}", (self.number_base + n) % 1_000_000_000)
    }
}

/// Runs `f(0..n)` at most `k` at a time, results in order.
async fn in_waves<T, F, Fut>(n: usize, k: usize, f: F) -> Res<Vec<T>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Res<T>>,
{
    use futures_util::StreamExt;
    futures_util::stream::iter(0..n)
        .map(f)
        .buffered(k.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

enum End {
    Done,
    Deadline,
    Failed,
}

/// One complete life cycle; stops early (not an error) once the deadline has passed.
async fn cycle(w: &World, api: &Api, st: &mut Stats, c: usize, deadline: Instant) -> End {
    let staff = &w.staff[c];
    let hall = &w.halls[staff.hall];
    let clerk = &w.clerks[c % w.clerks.len()];
    macro_rules! step {
        ($e:expr) => {{
            if Instant::now() >= deadline {
                return End::Deadline;
            }
            match $e.await {
                Some(v) => v,
                None => return End::Failed,
            }
        }};
    }
    let body = json!({
        "msisdn": w.msisdn(), "target_province": CITIES[staff.hall % CITIES.len()].0,
        "target_city": CITIES[staff.hall % CITIES.len()].1, "target_hall_id": hall.id,
        "reason": "用户长期在外省居住", "expected_name": NAME,
    });
    let order = step!(api.json(
        st,
        OPEN,
        true,
        Method::POST,
        "/api/v1/work-orders",
        &clerk.token,
        Some(&body)
    ));
    let (Some(id), Some(msisdn)) = (order["id"].as_str(), order["msisdn"].as_str()) else {
        st.err(OPEN, true, format!("open: no id/msisdn in {order}"));
        return End::Failed;
    };
    let base = format!("/api/v1/work-orders/{id}");
    step!(api.call(st, GET, false, Method::GET, &base, &clerk.token, None));
    step!(api.call(
        st,
        CLAIM,
        true,
        Method::POST,
        &format!("{base}/claim"),
        &staff.token,
        None
    ));
    step!(api.call(
        st,
        LIST_CLERK,
        false,
        Method::GET,
        "/api/v1/work-orders?limit=20",
        &clerk.token,
        None
    ));
    step!(api.call(
        st,
        LIST_STAFF,
        false,
        Method::GET,
        "/api/v1/work-orders?state=open&limit=20",
        &staff.token,
        None
    ));
    let mut evidence = Vec::new();
    for kind in KINDS {
        let bytes = jpeg(&format!("{id}/{kind}"), w.evidence_size);
        evidence.push(json!({ "kind": kind, "sha256": sha256_hex(&bytes) }));
        step!(api.call(
            st,
            UPLOAD,
            true,
            Method::POST,
            &format!("{base}/evidence?kind={kind}"),
            &staff.token,
            Some(("image/jpeg", Bytes::from(bytes)))
        ));
    }
    let payload = json!({
        "wo": id, "hall": hall.id, "staff": staff.username, "msisdn": msisdn, "outcome": "match",
        "document": { "type": "resident_id", "number": ID_NUMBER, "name": NAME, "valid_until": "2035-06-30" },
        "method": { "chip_read": true, "face_match_score": 0.97, "operator_checked": true },
        "evidence": evidence,
        "iat": chrono::Utc::now().timestamp(), "jti": uuid::Uuid::new_v4().to_string(),
    });
    let result = json!({ "result": hall.key.sign(&payload) });
    step!(api.call(
        st,
        VERIFY,
        true,
        Method::POST,
        &format!("{base}/verification"),
        &staff.token,
        Some(("application/json", Bytes::from(result.to_string())))
    ));
    step!(api.call(
        st,
        COMPLETE,
        true,
        Method::POST,
        &format!("{base}/complete"),
        &clerk.token,
        Some(("application/json", Bytes::from_static(b"{}")))
    ));
    step!(api.call(
        st,
        AUDIT,
        false,
        Method::GET,
        &format!("/api/v1/audit/events?work_order={id}"),
        &w.auditor,
        None
    ));
    End::Done
}

async fn client_loop(w: &World, api: &Api, c: usize, deadline: Instant) -> Stats {
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let before = st.errors;
        match cycle(w, api, &mut st, c, deadline).await {
            End::Done => st.cycles += 1,
            End::Deadline => break,
            End::Failed => {
                // Do not spin on a dead server.
                if st.errors > before {
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    st
}

pub struct Measured {
    pub stats: Stats,
    pub secs: f64,
    pub rss: Vec<u64>,
    pub baseline_rss_kib: Option<u64>,
    pub cpu: Value,
    pub mail: Drained,
    pub sequencer_delay: SequencerDelay,
}

/// The numbers of one run the targets are judged on (`all --runs N` takes their medians).
#[derive(Debug, Clone)]
pub struct Summary {
    pub steps_per_s: f64,
    /// (what was measured, whether the target is held against it, tps).
    pub ceilings: Vec<(String, bool, f64)>,
    /// Every endpoint's row, with whether it changes state.
    pub endpoints: Vec<(bool, Row)>,
    /// p99 of all state-changing requests together, and of all reads together.
    pub steps_p99: f64,
    pub reads_p99: f64,
    pub sequencer_delay_p99_ms: Option<f64>,
    pub errors: u64,
    pub peak_rss_kib: Option<u64>,
    pub chain_ok: bool,
}

impl Summary {
    /// steps/s over the ceiling the target is held against, when it was measured.
    pub fn target_ratio(&self) -> Option<f64> {
        self.ceilings
            .iter()
            .find(|c| c.1)
            .map(|c| self.steps_per_s / c.2.max(1e-9))
    }
}

pub fn run(o: &Opts, args: &ServerArgs) -> Res<Outcome> {
    measure(o, args).map(|(out, _)| out)
}

/// One run: its report and the summary the targets are judged on.
pub fn measure(o: &Opts, args: &ServerArgs) -> Res<(Outcome, Summary)> {
    let clients = o.clients.max(1);
    let ceilings = if o.with_ceiling {
        let secs = o.ceiling_seconds.unwrap_or(o.seconds.min(30));
        ceiling::measure_all(
            o.backend,
            clients,
            secs,
            &o.pgbench_scales,
            o.pgbench.as_deref(),
            args.keep,
        )?
    } else {
        Vec::new()
    };
    let busy_before = crate::env::idle_check("lifecycle");
    let env = BenchEnv::prepare(o.backend, args, "lifecycle")?;
    let mut server = env.start_server(&[])?;
    eprintln!(
        "lifecycle: {} ({}), server pid {} at {}; seeding users …",
        o.backend.as_str(),
        env.pg_name().unwrap_or(&env.database_url),
        server.pid,
        server.base
    );
    let api = Api::new(&server.base, args.idempotency_keys)?;
    let pid = server.pid;
    let measured = actix_web::rt::System::new().block_on(async {
        server.wait_ready(&api, Duration::from_secs(120)).await?;
        let world = World::setup(
            &api,
            clients,
            o.evidence_size,
            o.setup_concurrency,
            args.mail,
        )
        .await?;
        if args.mail == Mail::None {
            env.clear_hall_emails()?;
        }
        eprintln!(
            "lifecycle: {clients} clients for {} s, mail {} …",
            o.seconds,
            args.mail.as_str()
        );
        let baseline_rss_kib = crate::env::proc_status_kib(pid, "VmRSS");
        let metrics_before = metrics::scrape(&api).await?;
        let stop = Cell::new(false);
        let cpu0 = CpuSnap::take(pid);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(o.seconds);
        let load = async {
            let all = join_all((0..clients).map(|c| client_loop(&world, &api, c, deadline))).await;
            stop.set(true);
            all
        };
        let (per_client, rss) = join(load, sample_rss(pid, &stop)).await;
        let load_ended = Instant::now();
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu0.usage(&CpuSnap::take(pid));
        if args.mail != Mail::None {
            eprintln!(
                "lifecycle: waiting (at most {} s) for the outbox to drain …",
                o.drain_seconds
            );
        }
        let mail = mail::drain(
            &api,
            &world.admin,
            args.mail,
            load_ended,
            Duration::from_secs(o.drain_seconds),
            env.dir.path(),
        )
        .await?;
        let metrics_after = metrics::scrape(&api).await?;
        let mut stats = Stats::default();
        for s in per_client {
            stats.merge(s);
        }
        Ok::<_, String>(Measured {
            stats,
            secs,
            rss,
            baseline_rss_kib,
            cpu,
            mail,
            sequencer_delay: SequencerDelay::between(&metrics_before, &metrics_after),
        })
    })?;
    let peak = server.status_kib("VmHWM");
    let alive = server.is_running();
    let warnings = server.log_warnings(5);
    let (chain, verify_secs) = env.verify_chain()?;
    server.stop();
    let (mut out, summary) = render(
        o,
        clients,
        &env,
        &measured,
        peak,
        alive,
        &warnings,
        &ceilings,
        &chain.raw,
        chain.ok,
        verify_secs,
    );
    out.json["machine_busy_before_pct"] = json!(busy_before);
    if let Some(b) = busy_before.filter(|&b| b > 15.0) {
        out.table.push_str(&format!(
            "WARNING: the machine was {b:.0}% busy with other processes just before the run\n"
        ));
    }
    Ok((out, summary))
}

#[allow(clippy::too_many_arguments)]
fn render(
    o: &Opts,
    clients: usize,
    env: &BenchEnv,
    m: &Measured,
    peak: Option<u64>,
    alive: bool,
    warnings: &[String],
    ceilings: &[Ceiling],
    chain: &Value,
    chain_ok: bool,
    verify_secs: f64,
) -> (Outcome, Summary) {
    let st = &m.stats;
    let secs = m.secs;
    let mut rows = report::rows(st, secs);
    let endpoints: Vec<(bool, Row)> = st.eps.iter().map(|e| e.write).zip(rows.clone()).collect();
    // The state-changing steps together (what a change to the write path shows in), and the
    // reads together (held to their own, tighter target).
    let together = |write: bool, label: &str| {
        let lat: Vec<u32> = st
            .eps
            .iter()
            .filter(|e| e.write == write)
            .flat_map(|e| e.lat_us.iter().copied())
            .collect();
        let errors = st
            .eps
            .iter()
            .filter(|e| e.write == write)
            .map(|e| e.errors)
            .sum();
        Row::new(label, &lat, errors, secs, None)
    };
    let step_row = together(true, "state-changing steps");
    let read_row = together(false, "reads");
    let at = rows.len().saturating_sub(1);
    rows.insert(at, read_row.clone());
    rows.insert(at, step_row.clone());
    let steps: u64 = st
        .eps
        .iter()
        .filter(|e| e.write)
        .map(|e| e.lat_us.len() as u64)
        .sum();
    let requests: u64 = st.eps.iter().map(|e| e.lat_us.len() as u64).sum();
    let steps_per_s = steps as f64 / secs;
    let rss = rss_summary(&m.rss);
    let mut t = format!(
        "crossprov-bench lifecycle — backend {}, {clients} clients, mail {}, {} s requested, \
         {secs:.1} s measured\n",
        o.backend.as_str(),
        m.mail.mail.as_str(),
        o.seconds
    );
    t.push_str(&format!(
        "life cycles: {} ({:.2}/s)   state-changing steps: {steps} ({steps_per_s:.1}/s)   \
         requests: {requests} ({:.1}/s)   errors: {}\n\n",
        st.cycles,
        st.cycles as f64 / secs,
        requests as f64 / secs,
        st.errors
    ));
    t.push_str(&report::table(&rows));
    t.push_str(&report::errors_text(st));
    t.push_str(&format!(
        "\nserver: peak RSS (VmHWM) {}; VmRSS before load {}, during load min {} / avg {} / max {}\n",
        mib(peak),
        mib(m.baseline_rss_kib),
        mib(rss["min_kib"].as_u64()),
        mib(rss["avg_kib"].as_u64()),
        mib(rss["max_kib"].as_u64()),
    ));
    let f = |k: &str| {
        m.cpu[k]
            .as_f64()
            .map(|x| format!("{x:.0}%"))
            .unwrap_or_else(|| "?".into())
    };
    t.push_str(&format!(
        "CPU during load (% of one core): server {}, bench client {}, everything else {} \
         (database processes, kernel); machine {} busy, {} iowait of {} cores\n",
        f("server_pct_of_one_core"),
        f("bench_pct_of_one_core"),
        f("other_pct_of_one_core"),
        f("machine_busy_pct"),
        f("machine_iowait_pct"),
        m.cpu["cores"]
    ));
    t.push_str(&m.mail.text(steps, st.cycles));
    t.push_str(&m.sequencer_delay.text());
    for c in ceilings {
        t.push_str(&c.text);
        t.push_str(&format!(
            "service steps/s ÷ {} tps = {steps_per_s:.1} / {:.1} = {:.3}{}\n",
            c.label,
            c.tps,
            steps_per_s / c.tps.max(1e-9),
            if c.target {
                " (the ceiling the target is held against)"
            } else {
                ""
            }
        ));
    }
    t.push_str(&format!(
        "audit chain after the run: {} ({} events; crossprov audit verify took {verify_secs:.2} s)\n",
        if chain_ok { "intact" } else { "BROKEN" },
        chain["checked"]
    ));
    if !warnings.is_empty() {
        t.push_str("server log warnings/errors (first few):\n");
        for w in warnings {
            t.push_str("  ");
            t.push_str(w);
            t.push('\n');
        }
    }
    let mut problems = Vec::new();
    if st.errors > 0 {
        problems.push(format!(
            "lifecycle {}: {} request errors, first: {}",
            o.backend.as_str(),
            st.errors,
            st.first_errors.first().cloned().unwrap_or_default()
        ));
    }
    if st.cycles == 0 {
        problems.push(format!(
            "lifecycle {}: no life cycle completed",
            o.backend.as_str()
        ));
    }
    if !chain_ok {
        problems.push(format!(
            "lifecycle {}: audit chain does not verify: {chain}",
            o.backend.as_str()
        ));
    }
    if !alive {
        problems.push(format!(
            "lifecycle {}: the server died during the run",
            o.backend.as_str()
        ));
    }
    problems.extend(m.mail.problems(o.backend.as_str(), st.cycles));
    // The ceiling's own errors (SQLite writers starved past busy_timeout, pgbench failures)
    // are part of what it measures: shown above and in the JSON, not a failed run.
    let json = json!({
        "mode": "lifecycle",
        "backend": o.backend.as_str(),
        "database": env.pg_name().unwrap_or(&env.database_url),
        "clients": clients,
        "seconds": o.seconds,
        "elapsed_s": r2(secs),
        "evidence_size": o.evidence_size,
        "cycles": st.cycles,
        "cycles_per_s": r2(st.cycles as f64 / secs),
        "steps": steps,
        "steps_per_s": r2(steps_per_s),
        "requests": requests,
        "requests_per_s": r2(requests as f64 / secs),
        "errors": st.errors,
        "first_errors": st.first_errors,
        "endpoints": rows.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "steps_latency": step_row.json(),
        "reads_latency": read_row.json(),
        "sequencer_delay": m.sequencer_delay.json(),
        "server": {
            "peak_rss_kib": peak,
            "rss_before_load_kib": m.baseline_rss_kib,
            "rss_during_load": rss,
            "alive_at_end": alive,
            "log_warnings": warnings,
        },
        "cpu": m.cpu,
        "mail": m.mail.json(steps, st.cycles),
        "ceilings": ceilings.iter().map(|c| {
            let mut v = c.json.clone();
            v["steps_per_s_over_tps"] = json!((steps_per_s / c.tps.max(1e-9) * 1000.0).round() / 1000.0);
            v
        }).collect::<Vec<_>>(),
        "chain": { "ok": chain_ok, "verify": chain, "verify_s": r2(verify_secs) },
        "cpu_note": "server/bench/other in % of one core; other = machine busy minus server and bench (database processes, kernel)",
    });
    let summary = Summary {
        steps_per_s,
        ceilings: ceilings
            .iter()
            .map(|c| (c.label.clone(), c.target, c.tps))
            .collect(),
        endpoints,
        steps_p99: step_row.p99,
        reads_p99: read_row.p99,
        sequencer_delay_p99_ms: m.sequencer_delay.p99_ms(),
        errors: st.errors,
        peak_rss_kib: peak,
        chain_ok,
    };
    let outcome = Outcome {
        json,
        table: t,
        problems,
    };
    (outcome, summary)
}
