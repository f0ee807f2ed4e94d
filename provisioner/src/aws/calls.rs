//! Counts the AWS calls a command makes, with their timing, through an SDK
//! interceptor. Used by the plan benchmark and `--stats`: it shows how many
//! calls ran and how many of them had to run one after the other.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// One call: service, operation, start and end.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub start: Instant,
    pub end: Option<Instant>,
}

/// Shared log of calls; clone it into every client's config.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<Call>>>,
}

#[derive(Debug, Clone, Copy)]
struct CallIndex(usize);
impl Storable for CallIndex {
    type Storer = StoreReplace<Self>;
}

impl CallLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn snapshot(&self) -> Vec<Call> {
        self.lock().clone()
    }
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut calls = self.lock();
        calls.push(Call {
            service: String::new(),
            operation: String::new(),
            start: Instant::now(),
            end: None,
        });
        cfg.interceptor_state()
            .store_put(CallIndex(calls.len() - 1));
        Ok(())
    }

    /// The operation's own configuration (its `Metadata`) is in place only
    /// from here on: client interceptors run before it is applied.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CallIndex(i)) = cfg.load::<CallIndex>().copied()
            && let Some(m) = cfg.load::<Metadata>()
            && let Some(call) = self.lock().get_mut(i)
        {
            call.service = m.service().to_owned();
            call.operation = m.name().to_owned();
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CallIndex(i)) = cfg.load::<CallIndex>().copied()
            && let Some(call) = self.lock().get_mut(i)
        {
            call.end = Some(Instant::now());
        }
        Ok(())
    }
}

/// Figures about a set of calls.
#[derive(Debug, Clone, PartialEq)]
pub struct CallStats {
    pub calls: usize,
    /// The longest chain of calls each starting after the previous one ended:
    /// the round trips a command could not overlap.
    pub sequential: usize,
    /// From the first call's start to the last call's end.
    pub span: Duration,
}

pub fn stats(calls: &[Call]) -> CallStats {
    let mut done: Vec<(Instant, Instant)> = calls
        .iter()
        .filter_map(|c| c.end.map(|e| (c.start, e)))
        .collect();
    // Longest chain of non-overlapping intervals: greedy by end time.
    done.sort_by_key(|&(_, e)| e);
    let mut sequential = 0;
    let mut last_end: Option<Instant> = None;
    for (s, e) in &done {
        if last_end.is_none_or(|le| *s >= le) {
            sequential += 1;
            last_end = Some(*e);
        }
    }
    let span = match (
        done.iter().map(|d| d.0).min(),
        done.iter().map(|d| d.1).max(),
    ) {
        (Some(a), Some(b)) => b.duration_since(a),
        _ => Duration::ZERO,
    };
    CallStats {
        calls: calls.len(),
        sequential,
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(start_ms: u64, end_ms: u64, base: Instant) -> Call {
        Call {
            service: "s".into(),
            operation: "o".into(),
            start: base + Duration::from_millis(start_ms),
            end: Some(base + Duration::from_millis(end_ms)),
        }
    }

    #[test]
    fn concurrent_calls_count_as_one_round() {
        let t = Instant::now();
        let s = stats(&[call(0, 10, t), call(1, 11, t), call(2, 9, t)]);
        assert_eq!(s.calls, 3);
        assert_eq!(s.sequential, 1);
        assert_eq!(s.span, Duration::from_millis(11));
    }

    #[test]
    fn chained_calls_count_each() {
        let t = Instant::now();
        let s = stats(&[
            call(0, 10, t),
            call(10, 20, t),
            call(21, 30, t),
            call(0, 30, t),
        ]);
        assert_eq!(s.sequential, 3);
    }
}
