//! The account's Lambda concurrency, referenced (never changed): `plan`
//! reads it when a function declares reserved concurrency and reports, before
//! any change, a reservation AWS would refuse mid-apply.
//!
//! AWS's rule (lambda/latest/dg/configuration-concurrency.html): reserved
//! concurrency must leave at least 100 unreserved executions in the account
//! and Region; `PutFunctionConcurrency` otherwise answers "Specified
//! ReservedConcurrentExecutions for function decreases account's
//! UnreservedConcurrentExecution below its minimum value of [100]." New
//! accounts may have a quota of 10, where any reservation fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Aws, aws_error, error_code};
use crate::engine::{Declared, Fields, Finding, Live, ResourceError, Text, TypedKind, spec_of};
use crate::kind::export::{CodeLocation, Export, Part};
use crate::kind::{Access, Grant, account_arn};

/// The least AWS keeps unreserved (the rule above).
pub const MIN_UNRESERVED: i64 = 100;

/// The reservations the stack declares: function name → executions, with
/// the stack-file key each comes from (for the problem's wording).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencySpec {
    pub reservations: BTreeMap<String, Reservation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub executions: u32,
    /// e.g. `http.reserved_concurrency`.
    pub declared_as: String,
}

pub struct AccountConcurrency {
    declared: Declared,
    spec: ConcurrencySpec,
    aws: Arc<Aws>,
}

impl AccountConcurrency {
    pub fn new(address: &str, region: &str, spec: ConcurrencySpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, format!("lambda concurrency in {region}"), &spec);
        AccountConcurrency {
            declared,
            spec,
            aws,
        }
    }

    /// A function's reservation now (0 when it has none or does not exist).
    async fn reserved_now(&self, function: &str) -> Result<i64, ResourceError> {
        match self
            .aws
            .lambda
            .get_function_concurrency()
            .function_name(function)
            .send()
            .await
        {
            Ok(out) => Ok(i64::from(out.reserved_concurrent_executions().unwrap_or(0))),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(0),
            Err(e) => Err(aws_error(
                &format!("lambda:GetFunctionConcurrency {function}"),
                e,
            )),
        }
    }
}

/// What the account would have unreserved after the declared reservations:
/// problems for each that AWS would refuse.
pub fn findings(
    quota: i64,
    unreserved_now: i64,
    reservations: &[(String, Reservation, i64)],
) -> Vec<Finding> {
    let freed: i64 = reservations.iter().map(|(_, _, now)| now).sum();
    let wanted: i64 = reservations
        .iter()
        .map(|(_, r, _)| i64::from(r.executions))
        .sum();
    let after = unreserved_now + freed - wanted;
    if after >= MIN_UNRESERVED {
        return Vec::new();
    }
    let room = (unreserved_now + freed - MIN_UNRESERVED).max(0);
    reservations
        .iter()
        .map(|(function, r, _)| {
            Finding::Problem(format!(
                "{} {} for {function}: AWS would refuse it mid-apply: \"Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].\" The account's concurrency quota in this Region is {quota} with {unreserved_now} unreserved now, so at most {room} can be reserved here. Lower or remove {}, or ask for a higher quota (Service Quotas: AWS Lambda, Concurrent executions)",
                r.declared_as, r.executions, r.declared_as
            ))
        })
        .collect()
}

#[async_trait]
impl TypedKind for AccountConcurrency {
    /// Referenced: nothing to create, so no spec beyond its fields.
    type Spec = Fields;
    const KIND: &'static str = "lambda-account-concurrency";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn managed(&self) -> bool {
        false
    }
    fn taggable(&self) -> bool {
        false
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let spec: ConcurrencySpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let settings = self.aws.lambda.get_account_settings().send();
        let current = futures::future::try_join_all(
            spec.reservations
                .keys()
                .map(|function| self.reserved_now(function)),
        );
        let (settings, current) = tokio::join!(settings, current);
        let settings = settings.map_err(|e| aws_error("lambda:GetAccountSettings", e))?;
        let limit = settings.account_limit();
        let quota = limit.map_or(0, |l| i64::from(l.concurrent_executions()));
        let unreserved = limit
            .and_then(|l| l.unreserved_concurrent_executions())
            .map_or(quota, i64::from);
        let reservations: Vec<(String, Reservation, i64)> = spec
            .reservations
            .iter()
            .zip(current?)
            .map(|((f, r), now)| (f.clone(), r.clone(), now))
            .collect();
        Ok(Some(Live {
            findings: findings(quota, unreserved, &reservations),
            ..Live::default()
        }))
    }
}

/// An account setting: no template resource.
impl Export for AccountConcurrency {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        Ok(Vec::new())
    }
    fn cloudformation_attr(&self, _id: &str, _attr: &str) -> Option<String> {
        None
    }
}

/// `GetAccountSettings` is authorised only on `*` (Service Authorization
/// Reference: no resource type), held to the stack's Region;
/// `GetFunctionConcurrency` on each function.
impl Access for AccountConcurrency {
    fn read_access(&self) -> Vec<Grant> {
        let functions: Vec<Text> = self
            .spec
            .reservations
            .keys()
            .map(|f| account_arn("lambda", format!("function:{f}")))
            .collect();
        vec![
            Grant::unscoped(&["lambda:GetAccountSettings"]),
            Grant::on(&["lambda:GetFunctionConcurrency"], functions),
        ]
    }
    fn write_access(&self) -> Vec<Grant> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(n: u32) -> Reservation {
        Reservation {
            executions: n,
            declared_as: "http.reserved_concurrency".into(),
        }
    }

    fn problems(quota: i64, unreserved: i64, want: u32, now: i64) -> Vec<String> {
        findings(quota, unreserved, &[("couch-http".into(), http(want), now)])
            .into_iter()
            .map(|f| match f {
                Finding::Problem(m) => m,
                Finding::Warning(m) => panic!("a warning: {m}"),
            })
            .collect()
    }

    #[test]
    fn a_new_account_of_ten_can_reserve_nothing() {
        let p = problems(10, 10, 5, 0);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("below its minimum value of [100]"),
            "{}",
            p[0]
        );
        assert!(p[0].contains("quota in this Region is 10"), "{}", p[0]);
        assert!(p[0].contains("at most 0 can be reserved"), "{}", p[0]);
    }

    #[test]
    fn exactly_one_hundred_left_is_allowed_one_fewer_is_not() {
        assert!(problems(1000, 1000, 900, 0).is_empty());
        let p = problems(1000, 1000, 901, 0);
        assert!(p[0].contains("at most 900"), "{}", p[0]);
    }

    #[test]
    fn the_functions_own_reservation_is_given_back_first() {
        // 150 unreserved with 60 held by this function: 210 free for it, 110 may be reserved.
        assert!(problems(1000, 150, 110, 60).is_empty());
        assert_eq!(problems(1000, 150, 111, 60).len(), 1);
    }
}
