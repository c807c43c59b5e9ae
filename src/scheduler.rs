//! The SLA scheduler inside `serve`: every instance runs one. Each pass fires the reminders,
//! escalations and expiries that are due (the service step makes each happen once however
//! many instances look), then sleeps until the next pass or until the clock is moved.

use std::time::Duration;

use crate::service::Services;

/// Runs until the task is dropped.
pub async fn run(services: Services) {
    let settings = services.settings();
    // A movable clock is for tests that expect timers within seconds of moving it.
    let every = if settings.testing.movable_clock {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(settings.sla.timer_interval_seconds.max(1))
    };
    loop {
        if let Err(e) = services.follow_shared_clock().await {
            tracing::warn!(error = %e, "could not read the shared clock");
        }
        match services.fire_due_timers().await {
            Ok(fired) if fired != Default::default() => tracing::info!(
                reminders = fired.reminders,
                escalations = fired.escalations,
                expiries = fired.expiries,
                "SLA timers fired"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "SLA timers could not fire; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = services.wake().timers.notified() => {}
        }
    }
}
