//! The HTTP API: every route to the HTTP function's `live` alias with the
//! stack's authorization (the public page: none) and throttling, and the
//! invoke permission of each.

use std::sync::Arc;

use super::{API, Declaration, ROUTES, arn_path};
use crate::aws::Aws;
use crate::aws::aliases::FunctionAlias;
use crate::aws::aliases::LIVE;
use crate::aws::http_apis::{self, ApiAttrs, HttpApi, HttpApiSpec};
use crate::aws::permissions::{InvokePermission, PermissionSpec};
use crate::engine::{Handle, Text};
use crate::stack::{Auth, Stack};

pub fn declare(
    d: &mut Declaration,
    stack: &Stack,
    aws: &Arc<Aws>,
    http_alias: &Handle<FunctionAlias>,
) -> Handle<HttpApi> {
    // Every route alike: to the function, with the stack's authorization.
    let route = http_apis::Route {
        to_integration: true,
        authorization_type: match &stack.http.auth {
            Auth::None => "NONE",
            Auth::Iam => "AWS_IAM",
            Auth::Jwt(_) => "JWT",
        }
        .into(),
        authorization_scopes: match &stack.http.auth {
            Auth::Jwt(jwt) => {
                let mut scopes = jwt.scopes.clone();
                scopes.sort();
                scopes
            }
            Auth::None | Auth::Iam => Vec::new(),
        },
        to_authorizer: matches!(stack.http.auth, Auth::Jwt(_)),
    };
    // The page: a browser loads it before it holds any credential.
    let public = http_apis::Route {
        to_integration: true,
        authorization_type: "NONE".into(),
        authorization_scopes: Vec::new(),
        to_authorizer: false,
    };
    let api = d.add(HttpApi::new(
        API,
        stack.api_name(),
        &HttpApiSpec {
            protocol_type: "HTTP".into(),
            integration: http_apis::Integration {
                kind: "AWS_PROXY".into(),
                uri: http_alias.arn().into(),
                payload_format_version: "2.0".into(),
                timeout_ms: stack.http.timeout_seconds * 1000,
            },
            authorizer: match &stack.http.auth {
                Auth::Jwt(jwt) => Some(http_apis::Authorizer {
                    name: stack.authorizer_name(),
                    issuer: jwt.issuer.clone(),
                    audience: jwt.audience.clone(),
                    identity_source: vec![http_apis::IDENTITY_SOURCE.into()],
                }),
                Auth::None | Auth::Iam => None,
            },
            routes: ROUTES
                .iter()
                .map(|(r, _, _)| {
                    let with = if r.is_public() { &public } else { &route };
                    (r.key(), with.clone())
                })
                .collect(),
            stage: http_apis::Stage {
                name: "$default".into(),
                auto_deploy: true,
                throttling: Some(http_apis::Throttling {
                    rate_limit: stack.http.rate_per_second,
                    burst_limit: stack.http.burst,
                }),
            },
            tags: stack.resource_tags(),
        },
        Arc::clone(aws),
    ));
    for (r, address, sid) in ROUTES {
        d.add(InvokePermission::new(
            address,
            &format!("{}:{LIVE}", stack.http_name()),
            sid,
            &PermissionSpec {
                function_name: http_alias.name().into(),
                action: "lambda:InvokeFunction".into(),
                principal: "apigateway.amazonaws.com".into(),
                // Only this API's route, in any of its stages.
                source_arn: Text::from(api.execution_arn()).then(format!(
                    "/*/{}{}",
                    r.method,
                    arn_path(r.path)
                )),
            },
            Arc::clone(aws),
        ));
    }

    api
}
