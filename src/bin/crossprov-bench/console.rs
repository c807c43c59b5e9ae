//! The console's busiest list: a clerk with N orders in scope (10,000 by default) loads the
//! queue page, one request at a time, R times (and likewise an order, the hall's inbox, the
//! admin's operations overview over all N, and the auditor's search by number); the time each page takes on the server (a
//! loopback request, the whole page read) against the 200 ms target.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::client::{Api, Stats};
use crate::env::{mib, BenchEnv};
use crate::report::{self, Row};
use crate::{Backend, Outcome, Res, ServerArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// Orders in the clerk's scope.
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,
    /// Page loads measured per page.
    #[arg(long, default_value_t = 200)]
    pub loads: usize,
}

/// The target the issue sets for the busiest list, on the server.
const TARGET_MS: f64 = 200.0;
const OPEN: &str = "POST /api/v1/work-orders (seeding)";
/// Label, path (empty: the page of one order) and what the whole page must hold.
const PAGES: [(&str, &str, &str); 6] = [
    ("GET /console/orders", "/console/orders", "id=\"orders\""),
    (
        "GET /console/orders?state=open&limit=200",
        "/console/orders?state=open&limit=200",
        "id=\"orders\"",
    ),
    ("GET /console/orders/{id}", "", "id=\"timeline\""),
    (
        "GET /console/inbox (hall staff)",
        "/console/inbox",
        "id=\"h-new\"",
    ),
    (
        "GET /console/admin/operations (admin)",
        "/console/admin/operations",
        "id=\"plot-completions\"",
    ),
    (
        "GET /console/audit?msisdn= (auditor)",
        "/console/audit?msisdn=13900000000",
        "id=\"events\"",
    ),
];

pub fn run(o: &Opts, args: &ServerArgs) -> Res<Outcome> {
    let env = BenchEnv::prepare(o.backend, args, "console")?;
    let mut server = env.start_server(&[])?;
    eprintln!(
        "console: {} ({}), server pid {}; seeding {} orders …",
        o.backend.as_str(),
        env.pg_name().unwrap_or(&env.database_url),
        server.pid,
        o.orders
    );
    let api = Api::new(&server.base, args.idempotency_keys)?;
    let page_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let (stats, seeded, seed_secs) = actix_web::rt::System::new().block_on(async {
        server.wait_ready(&api, Duration::from_secs(120)).await?;
        let crate::client::OneHall {
            admin,
            hall,
            clerk,
            staff,
            auditor,
        } = api.one_hall("con").await?;
        // Seeding: 32 clients open orders through the API, every one in the clerk's scope
        // and the hall's inbox.
        let started = Instant::now();
        let clients = 32;
        let per = o.orders.div_ceil(clients);
        let seeds = (0..clients).map(|c| {
            let (api, clerk, hall) = (&api, &clerk, &hall);
            async move {
                let mut st = Stats::default();
                let mut first = None;
                for i in (c * per)..((c + 1) * per).min(o.orders) {
                    let body = json!({
                        "msisdn": format!("139{:08}", i), "target_province": "37",
                        "target_city": "370100", "target_hall_id": hall,
                        "reason": "控制台列表压测", "expected_name": "张三",
                    });
                    let opened = api
                        .json(
                            &mut st,
                            OPEN,
                            true,
                            Method::POST,
                            "/api/v1/work-orders",
                            clerk,
                            Some(&body),
                        )
                        .await;
                    if first.is_none() {
                        first = opened.and_then(|v| v["id"].as_str().map(str::to_owned));
                    }
                }
                (st, first)
            }
        });
        let mut stats = Stats::default();
        let mut some_order = None;
        for (st, first) in join_all(seeds).await {
            stats.merge(st);
            some_order = some_order.or(first);
        }
        let seed_secs = started.elapsed().as_secs_f64();
        let order = some_order.ok_or("no order was opened")?;
        for (label, path, marker) in PAGES {
            let (path, token) = match path {
                "" => (format!("/console/orders/{order}"), &clerk),
                "/console/inbox" => (path.to_owned(), &staff),
                "/console/admin/operations" => (path.to_owned(), &admin),
                p if p.starts_with("/console/audit") => (path.to_owned(), &auditor),
                _ => (path.to_owned(), &clerk),
            };
            for _ in 0..o.loads {
                let started = Instant::now();
                // The browser's request: the session cookie holds the same token.
                let sent = page_client
                    .get(format!("{}{}", server.base, path))
                    .header("Cookie", format!("crossprov_session={token}"))
                    .send()
                    .await;
                match sent {
                    Ok(res) if res.status().is_success() => match res.bytes().await {
                        Ok(body) if body.windows(marker.len()).any(|w| w == marker.as_bytes()) => {
                            stats.ok(label, false, started.elapsed(), body.len() as u64)
                        }
                        Ok(body) => stats.err(
                            label,
                            false,
                            format!("{path}: a page without {marker} ({} bytes)", body.len()),
                        ),
                        Err(e) => stats.err(label, false, format!("{path}: {e}")),
                    },
                    Ok(res) => stats.err(label, false, format!("{path}: {}", res.status())),
                    Err(e) => stats.err(label, false, format!("{path}: {e}")),
                }
            }
        }
        Ok::<_, String>((stats, o.orders, seed_secs))
    })?;
    let peak = server.status_kib("VmHWM");
    server.stop();

    let rows: Vec<Row> = stats
        .eps
        .iter()
        .map(|e| {
            let busy = e.lat_us.iter().map(|&u| f64::from(u)).sum::<f64>() / 1e6;
            Row::new(e.label, &e.lat_us, e.errors, busy, Some(e.bytes))
        })
        .collect();
    let mut problems = Vec::new();
    if stats.errors > 0 {
        problems.push(format!("{} requests failed", stats.errors));
    }
    let busiest = rows.iter().find(|r| r.label == PAGES[0].0);
    let verdict = match busiest {
        Some(r) if r.p99 < TARGET_MS => format!("met: p99 {:.1} ms < {TARGET_MS} ms", r.p99),
        Some(r) => format!("MISSED: p99 {:.1} ms ≥ {TARGET_MS} ms", r.p99),
        None => "not measured".into(),
    };
    let mut t = format!(
        "crossprov-bench console — backend {}, {seeded} orders in the clerk's scope (seeded in {seed_secs:.1} s), {} loads per page, one at a time\n\n",
        o.backend.as_str(),
        o.loads
    );
    t.push_str(&report::table(&rows));
    t.push_str(&report::errors_text(&stats));
    t.push_str(&format!(
        "\nbusiest list (GET /console/orders, first page of {seeded}): {verdict}\nserver peak RSS (VmHWM) {}\n",
        mib(peak)
    ));
    Ok(Outcome {
        json: json!({
            "mode": "console",
            "backend": o.backend.as_str(),
            "orders": seeded,
            "seed_seconds": seed_secs,
            "loads": o.loads,
            "endpoints": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "target_ms": TARGET_MS,
            "verdict": verdict,
            "peak_rss_kib": peak,
        }),
        table: t,
        problems,
    })
}
