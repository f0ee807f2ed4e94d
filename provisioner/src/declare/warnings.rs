//! What every plan of the stack says about it, whatever the account holds:
//! an open door, and throughput that an alarm or a timeout will meet.

use super::{ALARM, API, WORKER};
use crate::stack::{Auth, Stack};
use couch_contract::routes;

/// What every plan of the stack says about its door, whatever the account
/// holds: an open route, with what the throttle still lets anyone spend.
pub fn warnings(stack: &Stack) -> Vec<String> {
    let mut out = Vec::new();
    let h = &stack.http;
    if h.auth == Auth::None {
        let cap = h.reserved_concurrency.map_or(String::new(), |n| {
            format!(", {n} at a time (http.reserved_concurrency)")
        });
        // The stage's throttle is each route's own (DefaultRouteSettings:
        // apigateway/latest/developerguide/http-api-throttling.html), and
        // both of these routes end in a model call.
        let paid = [routes::SYNC, routes::SUBMIT];
        out.push(format!(
            "{API}: the routes {} are open (http.auth: none): anyone with their URL can generate images, each a paid model call; the throttle lets through at most {} an hour on each route ({} at once, then {}/s), {} an hour in all{cap}. Set http.auth to iam or jwt to close them",
            paid.map(|r| r.key()).join(" and "),
            h.images_per_hour(),
            h.burst,
            h.rate_per_second,
            h.images_per_hour() * paid.len() as u64,
        ));
    }
    out.extend(capacity_warnings(stack));
    out
}

/// What the stack's throughput means for its alarm and its worker: the
/// prompt-age alarm rings during a burst the stack is sized for when its
/// threshold is shorter than the drain; a batch that cannot be done within
/// the worker's timeout at its calls at once returns records unfinished.
pub fn capacity_warnings(stack: &Stack) -> Vec<String> {
    let mut out = Vec::new();
    let c = stack
        .capacity()
        .unwrap_or_else(|_| stack.adaptive_capacity());
    let drain = c.drain_seconds(stack.queue.burst);
    let threshold = f64::from(stack.alarm.threshold_seconds);
    if threshold < drain {
        out.push(format!(
            "{ALARM}: a burst of {} prompts (queue.burst) takes about {} to drain, and the oldest waits that long: the prompt-age alarm (alarm.threshold_seconds {}) rings during every such burst. Raise the threshold above {:.0} s if that is expected load, or raise the model's capacity",
            stack.queue.burst,
            crate::stack::capacity::minutes(drain),
            stack.alarm.threshold_seconds,
            drain.ceil()
        ));
    }
    let rounds = stack.worker.batch_size.div_ceil(c.per_instance.max(1));
    let batch_secs = f64::from(rounds) * c.seconds_per_image;
    if batch_secs > f64::from(stack.worker.timeout_seconds) {
        out.push(format!(
            "{WORKER}: a batch of {} at {} call(s) at a time takes about {:.0} s at {} s an image, longer than worker.timeout_seconds ({}): each invocation returns the records it has no time for (they come back at once, each return a receive). Lower worker.batch_size to {} or raise the timeout",
            stack.worker.batch_size,
            c.per_instance,
            batch_secs,
            c.seconds_per_image,
            stack.worker.timeout_seconds,
            (f64::from(stack.worker.timeout_seconds) / c.seconds_per_image).floor().max(1.0) as u32 * c.per_instance
        ));
    }
    out
}
