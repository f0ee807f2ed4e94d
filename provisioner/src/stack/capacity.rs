//! The model's capacity and what the stack derives from it: how many
//! worker instances the SQS trigger may run (`ScalingConfig.MaximumConcurrency`)
//! and how many model calls each makes at once (`WORKER_CONCURRENCY`), so
//! that the stack never has more calls in flight than the model allows; and
//! the throughput ceiling `plan` and `validate` print.
//!
//! The numbers a user states come from their account: Bedrock's quotas are
//! per model and Region ("On-demand InvokeModel requests per minute for
//! ${model}", Service Quotas console; bedrock/latest/userguide/quotas.html),
//! and a call's duration is measured (`provisioner verify --end-to-end`
//! prints it). With none stated the worker adapts to throttles by itself
//! (image_worker::pace).

use super::Stack;

/// Lambda's range for an SQS mapping's `ScalingConfig.MaximumConcurrency`
/// (lambda/latest/dg/API_ScalingConfig.html: minimum 2, maximum 1000).
pub const MIN_TRIGGER_CONCURRENCY: u32 = 2;
pub const MAX_TRIGGER_CONCURRENCY: u32 = 1000;

/// A model call's duration assumed when `model.seconds_per_image` is not
/// stated (Stable Image Core answers in a few seconds).
pub const DEFAULT_SECONDS_PER_IMAGE: f64 = 5.0;

/// The burst `plan` sizes against unless `queue.burst` says otherwise: the
/// exam's private beta of 1,000 users, each sending a prompt at once.
pub const DEFAULT_BURST: u32 = 1000;

/// What the stack derives from the model's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// The trigger's `ScalingConfig.MaximumConcurrency`.
    pub instances: u32,
    /// Model calls at once per worker instance (`WORKER_CONCURRENCY`).
    pub per_instance: u32,
    /// The model calls the whole stack may have in flight, when stated
    /// (`model.max_in_flight`, or what `model.images_per_minute` allows at
    /// `seconds_per_image`, whichever is less); `None`: adaptive.
    pub model_limit: Option<u32>,
    /// The HTTP function's reserved concurrency: its synchronous calls.
    pub http_reserved: Option<u32>,
    pub seconds_per_image: f64,
    /// The account's requests-per-minute quota, when stated.
    pub images_per_minute_quota: Option<u32>,
}

/// The best split of `budget` calls into instances × calls per instance:
/// at least [`MIN_TRIGGER_CONCURRENCY`] instances (or exactly `instances`
/// when stated), at most `batch` calls each (a batch has no more records),
/// the most calls in all, then the fewest instances. `None` when even the
/// smallest split exceeds the budget.
pub fn split(budget: u32, batch: u32, instances: Option<u32>) -> Option<(u32, u32)> {
    let batch = batch.max(1);
    if let Some(m) = instances {
        let c = (budget / m.max(1)).min(batch);
        return (c >= 1).then_some((m, c));
    }
    let mut best: Option<(u32, u32)> = None;
    for c in (1..=batch).rev() {
        let m = (budget / c).min(MAX_TRIGGER_CONCURRENCY);
        if m < MIN_TRIGGER_CONCURRENCY {
            continue;
        }
        if best.is_none_or(|(bm, bc)| m * c > bm * bc) {
            best = Some((m, c));
        }
    }
    best
}

impl Capacity {
    /// The worker's model calls in flight at most.
    pub fn worker_in_flight(&self) -> u32 {
        self.instances * self.per_instance
    }

    /// Images a minute the queue path makes at most: its calls in flight
    /// over a call's duration, and not above a stated quota.
    pub fn images_per_minute(&self) -> f64 {
        let by_calls = f64::from(self.worker_in_flight()) * 60.0 / self.seconds_per_image;
        self.images_per_minute_quota
            .map_or(by_calls, |q| by_calls.min(f64::from(q)))
    }

    /// How long a burst of `prompts` waits to be drained, in seconds.
    pub fn drain_seconds(&self, prompts: u32) -> f64 {
        f64::from(prompts) / self.images_per_minute() * 60.0
    }

    /// The line `plan` and `validate` print.
    pub fn line(&self, burst: u32) -> String {
        let ceiling = self.images_per_minute();
        let how = match self.model_limit {
            Some(limit) => format!(
                "model.max_in_flight {limit}{}: the trigger runs at most {} worker(s) x {} call(s)",
                self.http_reserved
                    .map_or(String::new(), |r| format!(" less {r} reserved for HTTP")),
                self.instances,
                self.per_instance
            ),
            None => format!(
                "no model capacity stated (model.max_in_flight): at most {} worker(s) x {} call(s), fewer while the model throttles; with fewer places than workers about half the capacity, docs/benchmarks.md",
                self.instances, self.per_instance
            ),
        };
        format!(
            "Throughput: at most {} images a minute ({how}, {} s an image); a burst of {} prompts is drained in about {}.",
            round(ceiling),
            self.seconds_per_image,
            thousands(burst),
            minutes(self.drain_seconds(burst))
        )
    }
}

fn round(x: f64) -> String {
    if x >= 10.0 {
        format!("{:.0}", x)
    } else {
        format!("{:.1}", x)
    }
}

fn thousands(n: u32) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as "N minutes" (or seconds under two minutes).
pub fn minutes(secs: f64) -> String {
    if secs < 120.0 {
        format!("{:.0} s", secs.ceil())
    } else {
        format!("{:.0} minutes", (secs / 60.0).ceil())
    }
}

impl Stack {
    /// Without a stated capacity: `worker.max_concurrency` instances, a
    /// batch's calls each, fewer while the model throttles.
    pub fn adaptive_capacity(&self) -> Capacity {
        Capacity {
            instances: self.worker.max_concurrency,
            per_instance: self.worker.batch_size,
            model_limit: None,
            http_reserved: self.http.reserved_concurrency,
            seconds_per_image: self.model.seconds_per_image,
            images_per_minute_quota: None,
        }
    }

    /// A preview's (a pull request's stack): the smallest worker Lambda
    /// allows, one call per instance, and no reservation for its HTTP
    /// function (previews reserve none). Bedrock's quotas are per account
    /// and Region, so a preview draws on production's capacity: this keeps
    /// it to two of the worker's calls (docs/reference/functions.md, "Throughput").
    fn preview_capacity(&self) -> Capacity {
        Capacity {
            instances: MIN_TRIGGER_CONCURRENCY,
            per_instance: 1,
            model_limit: self
                .model
                .max_in_flight
                .or(self.model.images_per_minute)
                .map(|_| MIN_TRIGGER_CONCURRENCY),
            http_reserved: None,
            seconds_per_image: self.model.seconds_per_image,
            images_per_minute_quota: None,
        }
    }

    /// The capacity the stack derives ([`split`]); a stack that passed
    /// validation always has one (validation reports the problems of one
    /// that does not).
    pub fn capacity(&self) -> Result<Capacity, (String, String)> {
        if self.preview_of.is_some() {
            return Ok(self.preview_capacity());
        }
        let m = &self.model;
        let w = &self.worker;
        let spi = m.seconds_per_image;
        let by_rate = m
            .images_per_minute
            .map(|q| ((f64::from(q) * spi / 60.0).floor() as u32).max(1));
        let model_limit = match (m.max_in_flight, by_rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let http_reserved = self.http.reserved_concurrency;
        let Some(limit) = model_limit else {
            return Ok(self.adaptive_capacity());
        };
        let key = if m.max_in_flight.is_some() {
            "model.max_in_flight"
        } else {
            "model.images_per_minute"
        };
        let Some(reserved) = http_reserved else {
            return Err((
                "http.reserved_concurrency".into(),
                format!(
                    "is needed with {key}: the HTTP function's synchronous model calls count against the model's capacity, and only a reservation bounds them (set it, e.g. 1)"
                ),
            ));
        };
        let budget = limit.saturating_sub(reserved);
        let Some((instances, per_instance)) = split(budget, w.batch_size, w.stated_max_concurrency)
        else {
            let need = w.stated_max_concurrency.unwrap_or(MIN_TRIGGER_CONCURRENCY);
            return Err((
                key.into(),
                format!(
                    "allows {limit} model call(s) at once; the HTTP function reserves {reserved} (http.reserved_concurrency) and the worker needs at least {need} (its trigger runs at least {need} instance(s), one call each; Lambda's minimum maximum concurrency is {MIN_TRIGGER_CONCURRENCY}): {} in all exceed it",
                    reserved + need
                ),
            ));
        };
        Ok(Capacity {
            instances,
            per_instance,
            model_limit: Some(limit),
            http_reserved: Some(reserved),
            seconds_per_image: spi,
            images_per_minute_quota: m.images_per_minute,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_split_into_the_most_calls_with_the_fewest_instances() {
        assert_eq!(split(4, 10, None), Some((2, 2)));
        assert_eq!(split(5, 10, None), Some((5, 1)), "5 calls beat 2 x 2");
        assert_eq!(split(50, 10, None), Some((5, 10)));
        assert_eq!(split(7, 10, None), Some((7, 1)));
        assert_eq!(split(8, 10, None), Some((2, 4)));
        assert_eq!(split(2, 10, None), Some((2, 1)));
        assert_eq!(split(1, 10, None), None, "Lambda runs at least 2 instances");
        assert_eq!(split(0, 10, None), None);
        assert_eq!(
            split(20, 1, None),
            Some((20, 1)),
            "a batch of one: one call each"
        );
        assert_eq!(split(5000, 10, None), Some((500, 10)));
        assert_eq!(
            split(20_000, 10, None),
            Some((1000, 10)),
            "Lambda's maximum"
        );
        // Stated instances: the calls each follow.
        assert_eq!(split(12, 10, Some(3)), Some((3, 4)));
        assert_eq!(split(2, 10, Some(3)), None);
    }

    #[test]
    fn a_preview_takes_two_calls_of_the_accounts_capacity_whatever_the_file_says() {
        let text = "name: couch-prod\nimages: { bucket: b-1, prefix: \"11\" }\nmodel: { max_in_flight: 10 }\nhttp: { reserved_concurrency: 2 }\nalarm: { email: t@example.com }\n";
        let path = std::path::Path::new("stacks/t.yaml");
        let prod = crate::stack::parse(path, text).unwrap().capacity().unwrap();
        assert_eq!((prod.instances, prod.per_instance), (2, 4));
        // A pull request's stack of the same file: no reservation (previews
        // reserve none), and still valid.
        let preview = crate::stack::parse_named(path, text, Some("couch-prod-pr-7")).unwrap();
        assert_eq!(preview.http.reserved_concurrency, None);
        let c = preview.capacity().unwrap();
        assert_eq!(
            (c.instances, c.per_instance, c.model_limit),
            (2, 1, Some(2))
        );
    }

    #[test]
    fn minutes_read_as_a_person_says_them() {
        assert_eq!(minutes(25.0), "25 s");
        assert_eq!(minutes(119.2), "120 s");
        assert_eq!(minutes(1250.0), "21 minutes");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
