//! The functions' part of the stack against moto: log groups, roles with
//! derived policies, Lambda functions from the zips, the SQS trigger, the HTTP
//! API and its invoke permissions. One module per behaviour; what belongs in
//! each opens it.

#[path = "../common/mod.rs"]
mod common;
mod created;
mod destroy;
mod drift;
mod duplicates;
mod local_run;
mod updates;
mod waits;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::*;
use provisioner::aws::policies::{parse_document, wildcards};
use provisioner::aws::roles::POLICY_NAME;
use provisioner::declare;
use provisioner::engine::Action;
use serde_json::{Value, json};

/// Every (action, resource) pair a policy grants.
fn grants(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow");
        for a in st["Action"].as_array().unwrap() {
            for r in st["Resource"].as_array().unwrap() {
                out.insert((
                    a.as_str().unwrap().to_owned(),
                    r.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

async fn worker_configuration(
    f: &Fixture,
) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
    f.lambda()
        .get_function_configuration()
        .function_name(f.stack().worker_name())
        .send()
        .await
        .unwrap()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect()
}

// The proxy serves from this runtime while the binary runs: two threads.
