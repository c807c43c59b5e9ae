//! Large evidence files: K uploads of a given size (distinct bytes each), then each downloaded
//! back and checked, one at a time; MiB/s each way and the server's peak RSS.

use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join;
use reqwest::Method;
use serde_json::json;

use crate::client::{jpeg, sha256_hex, Api, Stats};
use crate::env::{mib, r2, rss_summary, sample_rss, BenchEnv, CpuSnap};
use crate::report::{self, Row};
use crate::{Backend, Outcome, Res, ServerArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// Size of each file in MiB (fractions allowed, e.g. 0.0625 for 64 KiB).
    #[arg(long, default_value_t = 10.0)]
    pub size_mib: f64,
    /// How many files to upload (and download back).
    #[arg(long, default_value_t = 10)]
    pub count: usize,
}

const UP: &str = "POST /api/v1/work-orders/{id}/evidence?kind=";
const DOWN: &str = "GET /api/v1/work-orders/{id}/evidence/{sha256}";
const KINDS: [&str; 5] = [
    "id_front",
    "id_back",
    "live_photo",
    "registration_form",
    "other",
];
const DEFAULT_LIMIT: usize = 10 * 1024 * 1024;

pub fn run(o: &Opts, args: &ServerArgs) -> Res<Outcome> {
    let size = ((o.size_mib * 1_048_576.0).round() as usize).max(64);
    let env = BenchEnv::prepare(o.backend, args, "evidence")?;
    // The limit must admit the files; never lower than the default.
    let limit = size.max(DEFAULT_LIMIT);
    let mut server =
        env.start_server(&[("CROSSPROV_LIMITS__EVIDENCE_BYTES", limit.to_string())])?;
    eprintln!(
        "evidence: {} ({}), server pid {}; {} × {size} bytes …",
        o.backend.as_str(),
        env.pg_name().unwrap_or(&env.database_url),
        server.pid,
        o.count
    );
    let api = Api::new(&server.base, args.idempotency_keys)?;
    let pid = server.pid;
    let run_tag = crate::env::short_id();
    let (stats, rss, baseline, cpu) = actix_web::rt::System::new().block_on(async {
        server.wait_ready(&api, Duration::from_secs(120)).await?;
        let crate::client::OneHall {
            hall, clerk, staff, ..
        } = api.one_hall("ev").await?;
        let order = api
            .expect(
                Method::POST,
                "/api/v1/work-orders",
                Some(&clerk),
                Some(&json!({
                    "msisdn": "13900000001", "target_province": "37", "target_city": "370100",
                    "target_hall_id": hall, "reason": "证据文件压测", "expected_name": "张三",
                })),
                201,
            )
            .await?;
        let id = order["id"]
            .as_str()
            .ok_or_else(|| format!("no id in {order}"))?
            .to_owned();
        api.expect(
            Method::POST,
            &format!("/api/v1/work-orders/{id}/claim"),
            Some(&staff),
            None,
            200,
        )
        .await?;
        let baseline = crate::env::proc_status_kib(pid, "VmRSS");
        let stop = Cell::new(false);
        let cpu0 = CpuSnap::take(pid);
        let work = async {
            let mut st = Stats::default();
            let mut uploaded = Vec::new();
            for i in 0..o.count {
                let bytes = jpeg(&format!("bench-evidence-{run_tag}-{i}"), size);
                let sha = sha256_hex(&bytes);
                let kind = KINDS[i % KINDS.len()];
                let path = format!("/api/v1/work-orders/{id}/evidence?kind={kind}");
                if let Some(reply) = api
                    .call(
                        &mut st,
                        UP,
                        true,
                        Method::POST,
                        &path,
                        &staff,
                        Some(("image/jpeg", Bytes::from(bytes))),
                    )
                    .await
                {
                    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap_or_default();
                    if v["sha256"].as_str() != Some(sha.as_str()) {
                        st.err(
                            UP,
                            true,
                            format!("upload {i}: server's sha256 {} ≠ {sha}", v["sha256"]),
                        );
                    }
                    uploaded.push(sha);
                }
            }
            for sha in &uploaded {
                let path = format!("/api/v1/work-orders/{id}/evidence/{sha}");
                if let Some(body) = api
                    .call(&mut st, DOWN, false, Method::GET, &path, &clerk, None)
                    .await
                {
                    if sha256_hex(&body) != *sha {
                        st.err(
                            DOWN,
                            false,
                            format!("download {sha}: {} bytes with another digest", body.len()),
                        );
                    }
                }
            }
            stop.set(true);
            st
        };
        let (st, rss) = join(work, sample_rss(pid, &stop)).await;
        let cpu = cpu0.usage(&CpuSnap::take(pid));
        Ok::<_, String>((st, rss, baseline, cpu))
    })?;
    let peak = server.status_kib("VmHWM");
    let alive = server.is_running();
    let (chain, _) = env.verify_chain()?;
    server.stop();

    let rows: Vec<Row> = stats
        .eps
        .iter()
        .map(|e| {
            // Throughput over the time spent in these requests (they run one at a time).
            let busy = e.lat_us.iter().map(|&u| f64::from(u)).sum::<f64>() / 1e6;
            Row::new(
                e.label,
                &e.lat_us,
                e.errors,
                busy,
                Some(sent_bytes(e, size)),
            )
        })
        .collect();
    let rate = |label: &str| {
        rows.iter()
            .find(|r| r.label == label)
            .and_then(|r| r.mib_per_s)
    };
    let rss_s = rss_summary(&rss);
    let mut t = format!(
        "crossprov-bench evidence — backend {}, {} files of {size} bytes ({:.2} MiB), one at a time\n\n",
        o.backend.as_str(),
        o.count,
        size as f64 / 1_048_576.0
    );
    t.push_str(&report::table(&rows));
    t.push_str(&report::errors_text(&stats));
    t.push_str(&format!(
        "\nupload {} MiB/s, download {} MiB/s (bytes ÷ time spent in those requests)\n",
        rate(UP)
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "?".into()),
        rate(DOWN)
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "?".into()),
    ));
    t.push_str(&format!(
        "server: peak RSS (VmHWM) {}; VmRSS before {}, during min {} / avg {} / max {}\n",
        mib(peak),
        mib(baseline),
        mib(rss_s["min_kib"].as_u64()),
        mib(rss_s["avg_kib"].as_u64()),
        mib(rss_s["max_kib"].as_u64()),
    ));
    t.push_str(&format!(
        "server CPU {}% of one core; audit chain {}\n",
        cpu["server_pct_of_one_core"],
        if chain.ok { "intact" } else { "BROKEN" }
    ));
    let mut problems = Vec::new();
    if stats.errors > 0 {
        problems.push(format!(
            "evidence {}: {} errors, first: {}",
            o.backend.as_str(),
            stats.errors,
            stats.first_errors.first().cloned().unwrap_or_default()
        ));
    }
    if !chain.ok {
        problems.push(format!(
            "evidence {}: audit chain does not verify: {}",
            o.backend.as_str(),
            chain.raw
        ));
    }
    if !alive {
        problems.push(format!("evidence {}: the server died", o.backend.as_str()));
    }
    let json = json!({
        "mode": "evidence",
        "backend": o.backend.as_str(),
        "size_bytes": size,
        "count": o.count,
        "upload_mib_per_s": rate(UP).map(r2),
        "download_mib_per_s": rate(DOWN).map(r2),
        "endpoints": rows.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "errors": stats.errors,
        "first_errors": stats.first_errors,
        "server": {
            "peak_rss_kib": peak,
            "rss_before_kib": baseline,
            "rss_during": rss_s,
            "evidence_limit_bytes": limit,
            "alive_at_end": alive,
        },
        "cpu": cpu,
        "chain_ok": chain.ok,
    });
    Ok(Outcome {
        json,
        table: t,
        problems,
    })
}

/// Bytes moved by an endpoint: what came back for downloads; what was sent for uploads.
fn sent_bytes(e: &crate::client::EpStats, size: usize) -> u64 {
    if e.write {
        e.lat_us.len() as u64 * size as u64
    } else {
        e.bytes
    }
}
