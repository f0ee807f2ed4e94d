//! The identity `couch-client` runs as, and the permissions boundary: the
//! ceiling of every role of the stack (its own, or a preview's, made by
//! `bootstrap`).

use std::sync::Arc;

use super::functions::boundary;
use super::queueing::Queueing;
use super::{BOUNDARY, CLIENT_ROLE, Declaration, References, arn_path, guarded_routes};
use crate::aws::Aws;
use crate::aws::http_apis::{ApiAttrs, HttpApi};
use crate::aws::managed_policies::{ManagedPolicy, ManagedPolicySpec};
use crate::aws::policies::{PolicyDocument, Statement};
use crate::aws::roles::{IamRole, RoleSpec};
use crate::engine::{Handle, Text};
use crate::stack::{Auth, Stack};
use couch_contract::outputs::Output;

/// What the client may do (send prompts, read pictures, see whether one
/// exists), and the call of the stack's own API routes (granted with
/// `auth: iam`).
fn grants(
    stack: &Stack,
    refs: &References,
    q: &Queueing,
    api: &Handle<HttpApi>,
) -> (Vec<Statement>, Statement) {
    let (bucket, queue) = (&refs.bucket, &q.queue);
    let images = couch_contract::images_prefix(&stack.images.prefix);
    let call_the_api = Statement::allow(
        "CallTheApi",
        &["execute-api:Invoke"],
        // The page is authorized for no one: nothing to grant.
        guarded_routes()
            .map(|route| {
                Text::from(api.execution_arn()).then(format!(
                    "/$default/{}{}",
                    route.method,
                    arn_path(route.path)
                ))
            })
            .collect(),
    );
    let client_grants = vec![
        Statement::allow(
            "SendPrompts",
            &["sqs:SendMessage"],
            vec![queue.arn().into()],
        ),
        // Pictures only: the status objects beside them (`_status/*.json`)
        // hold other callers' prompts and owners.
        Statement::allow(
            "ReadImages",
            &["s3:GetObject"],
            vec![Text::from(bucket.arn()).then(format!("/{images}*.png"))],
        ),
        // Without s3:ListBucket, S3 answers a HEAD of a key that is not
        // there yet with 403, not 404 (s3/latest/API/API_HeadObject.html),
        // and `couch-client --wait` could not tell "not yet" from "denied".
        Statement::allow(
            "SeeWhetherAnImageExists",
            &["s3:ListBucket"],
            vec![bucket.arn().into()],
        )
        .when("StringLike", "s3:prefix", vec![format!("{images}*").into()]),
    ];
    (client_grants, call_the_api)
}

/// The client's statements as the boundary holds them.
fn bounded(client_grants: &[Statement], aws: &Aws) -> Vec<Statement> {
    // In the boundary the API is any of the account's with these routes in
    // the stack's Region: its id is AWS's to choose, and the API cannot be
    // made before the boundary (its integration names the HTTP function,
    // whose role carries the boundary). The client's own policy names the
    // stack's API.
    // A preview declares no client (`client:` is refused with `--name`):
    // its boundary holds no client statement, so no role a preview makes
    // can call an API or read pictures the way a client would.
    let mut bounded = client_grants.to_vec();
    bounded.push(Statement::allow(
        "CallTheApi",
        &["execute-api:Invoke"],
        guarded_routes()
            .map(|route| {
                Text::from(format!(
                    "arn:{}:execute-api:{}:*:*/$default/{}{}",
                    aws.partition(),
                    aws.region,
                    route.method,
                    arn_path(route.path)
                ))
            })
            .collect(),
    ));
    bounded
}

/// The client's role (or its absence), with the client's statements in the
/// boundary whether or not it is declared.
pub fn declare(
    d: &mut Declaration,
    stack: &Stack,
    aws: &Arc<Aws>,
    refs: &References,
    q: &Queueing,
    api: &Handle<HttpApi>,
) {
    let (mut client_grants, call_the_api) = grants(stack, refs, q, api);
    if stack.preview_of.is_none() {
        d.bound("Client", &bounded(&client_grants, aws));
    }
    if stack.http.auth == Auth::Iam {
        client_grants.push(call_the_api);
    }
    if let Some(client) = &stack.client {
        let role = d.add(IamRole::new(
            CLIENT_ROLE,
            stack.client_role_name(),
            &RoleSpec {
                assume_role_policy: PolicyDocument::trust_principals(&client.assumed_by),
                policy: PolicyDocument::new(client_grants),
                other_inline_policies: Vec::new(),
                managed_policies: Vec::new(),
                permissions_boundary: Some(boundary().into()),
                tags: stack.resource_tags(),
            },
            Arc::clone(aws),
        ));
        d.output(Output::ClientRoleArn, role.arn());
    } else {
        d.add(IamRole::absent(
            CLIENT_ROLE,
            stack.client_role_name(),
            Some(boundary().into()),
            stack.resource_tags(),
            Arc::clone(aws),
        ));
    }
}

/// The ceiling of every role above: the stack's own boundary (everything
/// [`Declaration::bound`] collected), or for a preview the one `bootstrap`
/// made for every preview of the file. Declared last: its document is
/// what every role before it brought.
pub fn permissions_boundary(d: &mut Declaration, stack: &Stack, aws: &Arc<Aws>) {
    match &stack.preview_of {
        None => {
            let spec = ManagedPolicySpec {
                document: d.boundary.clone(),
                tags: stack.resource_tags(),
            };
            d.add(ManagedPolicy::new(
                BOUNDARY,
                stack.boundary_name(),
                &spec,
                Arc::clone(aws),
            ));
        }
        Some(file) => {
            d.add(ManagedPolicy::referenced(
                BOUNDARY,
                stack.boundary_name(),
                format!(
                    "`provisioner bootstrap --stack <the stack file> --github-repo OWNER/NAME` makes it for every preview of {file}"
                ),
                Arc::clone(aws),
            ));
        }
    }
}
