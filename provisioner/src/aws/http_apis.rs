//! The HTTP API (API Gateway v2) and its parts: one AWS_PROXY integration to a
//! function, the routes to it by route key (each with its authorization:
//! none, `AWS_IAM`, or a JWT authorizer, also a part; a route the API has but
//! the declaration does not is deleted), the `$default` stage with auto-deploy and
//! the stage's throttling (`DefaultRouteSettings`). They are
//! one resource here because the parts only exist inside their API and are
//! found through it; each part is a field, so the plan names the part that
//! differs and `update` creates or changes only that part (an apply
//! interrupted after `CreateApi` converges by adding the missing parts).
//!
//! AWS allows several APIs with the same name. Those carrying this stack's
//! ownership tags are ours: two of them is an error naming both ids, never a
//! silent pick. Same-named APIs without the tags are not ours.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::{
    Api, AuthorizationType, AuthorizerType, IntegrationType, JwtConfiguration, ProtocolType,
    RouteSettings,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ARN, Aws, Created, Done, ID, NAME, aws_error, create_once, deleted, error_code, made_already,
    read_back, tags,
};
use crate::engine::retry;
use crate::engine::{
    Declared, DeleteOutcome, Field, Fields, Handle, Live, Ref, Resource, ResourceError, Tagging,
    Tags, Text, TypedKind, Update, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Grant};

/// Every page of a `Get*` list of one API (`items`, `nextToken`).
macro_rules! all_pages {
    ($request:expr) => {{
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            match $request.set_next_token(token.take()).send().await {
                Ok(page) => {
                    items.extend(page.items().iter().cloned());
                    match page.next_token() {
                        Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                        _ => break Ok(items),
                    }
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

const ENDPOINT: &str = "endpoint";
const EXECUTION_ARN: &str = "execution_arn";

/// An HTTP API as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpApiSpec {
    pub protocol_type: String,
    pub integration: Integration,
    /// The JWT authorizer the route uses (`None`: the API has none).
    pub authorizer: Option<Authorizer>,
    /// Route key (`POST /images`) → the route.
    pub routes: BTreeMap<String, Route>,
    pub stage: Stage,
    pub tags: Tags,
}
crate::engine::fields!(HttpApiSpec {
    PROTOCOL_TYPE: protocol_type
});

/// A JWT authorizer: API Gateway checks the bearer token's signature (keys
/// from the issuer's OpenID configuration), `iss`, `aud` and expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorizer {
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
    /// Where the token is: `$request.header.Authorization`.
    pub identity_source: Vec<String>,
}

/// Where a JWT authorizer reads the token (a `Bearer` header).
pub const IDENTITY_SOURCE: &str = "$request.header.Authorization";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    #[serde(rename = "type")]
    pub kind: String,
    /// The function's ARN.
    pub uri: Text,
    pub payload_format_version: String,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Whether the route's target is the integration above.
    pub to_integration: bool,
    /// `NONE`, `AWS_IAM` or `JWT`.
    pub authorization_type: String,
    /// With `JWT`: scopes a token must carry one of (read as none otherwise:
    /// API Gateway uses scopes only with JWT authorizers).
    pub authorization_scopes: Vec<String>,
    /// With `JWT`: whether the route uses the authorizer above.
    pub to_authorizer: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub auto_deploy: bool,
    /// `DefaultRouteSettings`' throttling, for every route of the stage.
    pub throttling: Option<Throttling>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    /// Steady-state requests per second (`ThrottlingRateLimit`).
    pub rate_limit: f64,
    /// The bucket (`ThrottlingBurstLimit`).
    pub burst_limit: u32,
}

pub struct HttpApi {
    declared: Declared,
    aws: Arc<Aws>,
}

/// Attributes an HTTP API exports (all chosen by AWS: known after apply).
impl crate::kind::HasId for HttpApi {}
/// What a `HttpApi` exports beyond the common attributes.
pub trait ApiAttrs {
    /// `https://{id}.execute-api.{region}.amazonaws.com`.
    fn endpoint(&self) -> Ref;
    /// `arn:aws:execute-api:{region}:{account}:{id}`: what invoke permissions scope to.
    fn execution_arn(&self) -> Ref;
}
impl ApiAttrs for Handle<HttpApi> {
    fn endpoint(&self) -> Ref {
        self.attr(ENDPOINT)
    }
    fn execution_arn(&self) -> Ref {
        self.attr(EXECUTION_ARN)
    }
}

/// The API's parts as they exist, by id.
struct Parts {
    integration: Option<(String, Integration)>,
    /// The API's authorizer (any on our API is ours: the declared one by
    /// name, else the first by name).
    authorizer: Option<(String, Authorizer)>,
    /// Route key → (id, route), every route the API has.
    routes: BTreeMap<String, (String, Route)>,
    stage: Option<Stage>,
}

impl Parts {
    /// The parts as AWS listed them, in the declared shape: the declared
    /// integration and authorizer (else the first), every route with what
    /// it points at, the declared stage.
    fn of(
        spec: &HttpApiSpec,
        integrations: &[aws_sdk_apigatewayv2::types::Integration],
        routes: &[aws_sdk_apigatewayv2::types::Route],
        stages: &[aws_sdk_apigatewayv2::types::Stage],
        authorizers: Vec<aws_sdk_apigatewayv2::types::Authorizer>,
    ) -> Parts {
        let authorizer = Parts::authorizer_of(spec, authorizers);
        let integration = Parts::integration_of(spec, integrations);
        let target = integration
            .as_ref()
            .map(|(id, _)| format!("integrations/{id}"));
        let routes = Parts::routes_of(routes, target.as_deref(), authorizer.as_ref());
        let stage = Parts::stage_of(spec, stages);
        Parts {
            integration,
            authorizer,
            routes,
            stage,
        }
    }

    fn authorizer_of(
        spec: &HttpApiSpec,
        authorizers: Vec<aws_sdk_apigatewayv2::types::Authorizer>,
    ) -> Option<(String, Authorizer)> {
        let mut authorizers = authorizers;
        authorizers.sort_by(|a, b| a.name().cmp(&b.name()));
        authorizers
            .iter()
            .find(|a| {
                spec.authorizer
                    .as_ref()
                    .is_some_and(|want| a.name() == Some(want.name.as_str()))
            })
            .or_else(|| authorizers.first())
            .map(|a| {
                let jwt = a.jwt_configuration();
                (
                    a.authorizer_id().unwrap_or_default().to_owned(),
                    Authorizer {
                        name: a.name().unwrap_or_default().to_owned(),
                        issuer: jwt.and_then(|j| j.issuer()).unwrap_or_default().to_owned(),
                        audience: jwt.map(|j| j.audience().to_vec()).unwrap_or_default(),
                        identity_source: a.identity_source().to_vec(),
                    },
                )
            })
    }

    fn integration_of(
        spec: &HttpApiSpec,
        integrations: &[aws_sdk_apigatewayv2::types::Integration],
    ) -> Option<(String, Integration)> {
        integrations
            .iter()
            .find(|i| i.integration_uri() == Some(spec.integration.uri.as_str()))
            .or_else(|| integrations.first())
            .map(|i| {
                (
                    i.integration_id().unwrap_or_default().to_owned(),
                    Integration {
                        kind: i
                            .integration_type()
                            .map(|t| t.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        uri: Text::literal(i.integration_uri().unwrap_or_default()),
                        payload_format_version: i
                            .payload_format_version()
                            .unwrap_or_default()
                            .to_owned(),
                        timeout_ms: i
                            .timeout_in_millis()
                            .and_then(|t| u32::try_from(t).ok())
                            .unwrap_or_default(),
                    },
                )
            })
    }

    /// Route key → (id, route): what each points at.
    fn routes_of(
        routes: &[aws_sdk_apigatewayv2::types::Route],
        target: Option<&str>,
        authorizer: Option<&(String, Authorizer)>,
    ) -> BTreeMap<String, (String, Route)> {
        routes
            .iter()
            .map(|r| {
                let kind = r
                    .authorization_type()
                    .map_or("NONE", |t| t.as_str())
                    .to_owned();
                let jwt = kind == "JWT";
                (
                    r.route_key().unwrap_or_default().to_owned(),
                    (
                        r.route_id().unwrap_or_default().to_owned(),
                        Route {
                            to_integration: target.is_some() && r.target() == target,
                            authorization_scopes: if jwt {
                                let mut scopes = r.authorization_scopes().to_vec();
                                scopes.sort();
                                scopes
                            } else {
                                Vec::new()
                            },
                            to_authorizer: jwt
                                && authorizer
                                    .is_some_and(|(id, _)| r.authorizer_id() == Some(id.as_str())),
                            authorization_type: kind,
                        },
                    ),
                )
            })
            .collect()
    }

    fn stage_of(
        spec: &HttpApiSpec,
        stages: &[aws_sdk_apigatewayv2::types::Stage],
    ) -> Option<Stage> {
        stages
            .iter()
            .find(|s| s.stage_name() == Some(spec.stage.name.as_str()))
            .map(|s| Stage {
                name: s.stage_name().unwrap_or_default().to_owned(),
                auto_deploy: s.auto_deploy().unwrap_or(false),
                throttling: s.default_route_settings().and_then(|r| {
                    Some(Throttling {
                        rate_limit: r.throttling_rate_limit()?,
                        burst_limit: u32::try_from(r.throttling_burst_limit()?).ok()?,
                    })
                }),
            })
    }
}

impl HttpApi {
    pub fn new(address: &str, name: String, spec: &HttpApiSpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        HttpApi { declared, aws }
    }

    fn what(&self, call: &str) -> String {
        format!("apigateway:{call} {}", self.declared.name)
    }

    fn spec(&self) -> Result<HttpApiSpec, ResourceError> {
        spec_of(&self.declared.address, &self.declared.fields)
    }

    /// APIs with our name.
    async fn same_named(&self) -> Result<Vec<Api>, ResourceError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .aws
                .apigw
                .get_apis()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(&self.what("GetApis"), e))?;
            found.extend(
                page.items()
                    .iter()
                    .filter(|a| a.name() == Some(self.declared.name.as_str()))
                    .cloned(),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    async fn parts(&self, api_id: &str, spec: &HttpApiSpec) -> Result<Parts, ResourceError> {
        self.parts_or_gone(api_id, spec).await?.ok_or_else(|| {
            ResourceError::new(format!(
                "HTTP API {} ({api_id}) was deleted by someone else while being changed",
                self.declared.name
            ))
        })
    }

    /// The API's parts, or `None` when the API no longer exists: deleted
    /// between listing it and reading its parts (seen when a killed destroy's
    /// last `DeleteApi` was still being carried out as the next run read).
    async fn parts_or_gone(
        &self,
        api_id: &str,
        spec: &HttpApiSpec,
    ) -> Result<Option<Parts>, ResourceError> {
        let apigw = &self.aws.apigw;
        let (integrations, routes, stages, authorizers) = tokio::join!(
            async { all_pages!(apigw.get_integrations().api_id(api_id)) },
            async { all_pages!(apigw.get_routes().api_id(api_id)) },
            async { all_pages!(apigw.get_stages().api_id(api_id)) },
            async { all_pages!(apigw.get_authorizers().api_id(api_id)) },
        );
        let gone = |code: Option<&str>| code == Some("NotFoundException");
        if gone(integrations.as_ref().err().and_then(error_code))
            || gone(routes.as_ref().err().and_then(error_code))
            || gone(stages.as_ref().err().and_then(error_code))
            || gone(authorizers.as_ref().err().and_then(error_code))
        {
            return Ok(None);
        }
        let integrations = integrations.map_err(|e| aws_error(&self.what("GetIntegrations"), e))?;
        let routes = routes.map_err(|e| aws_error(&self.what("GetRoutes"), e))?;
        let stages = stages.map_err(|e| aws_error(&self.what("GetStages"), e))?;
        let authorizers = authorizers.map_err(|e| aws_error(&self.what("GetAuthorizers"), e))?;
        Ok(Some(Parts::of(
            spec,
            &integrations,
            &routes,
            &stages,
            authorizers,
        )))
    }

    /// Creates or changes the parts (as they are: `parts`) that differ from
    /// `spec`. The stage does not depend on the others and is done
    /// concurrently with the integration; the route needs the integration's id.
    async fn converge_parts(
        &self,
        api_id: &str,
        spec: &HttpApiSpec,
        parts: Parts,
    ) -> Result<(), ResourceError> {
        let old_authorizer = parts.authorizer.as_ref().map(|(id, _)| id.clone());
        let (integration_id, authorizer_id, ()) = tokio::try_join!(
            self.converge_integration(api_id, spec, parts.integration),
            self.converge_authorizer(api_id, spec, parts.authorizer),
            self.converge_stage(api_id, spec, parts.stage),
        )?;
        self.converge_routes(
            api_id,
            spec,
            parts.routes,
            &integration_id,
            authorizer_id.as_deref(),
        )
        .await?;
        // Only once no route uses it (AWS refuses to delete an authorizer in use).
        if let (Some(id), None) = (old_authorizer, &spec.authorizer) {
            retry::write(&parent(api_id), || async {
                deleted(
                    self.aws
                        .apigw
                        .delete_authorizer()
                        .api_id(api_id)
                        .authorizer_id(&id)
                        .send()
                        .await,
                    "NotFoundException",
                    &self.what("DeleteAuthorizer"),
                )
            })
            .await?;
        }
        Ok(())
    }

    /// Creates or updates the declared authorizer; its id, if one is declared.
    async fn converge_authorizer(
        &self,
        api_id: &str,
        spec: &HttpApiSpec,
        have: Option<(String, Authorizer)>,
    ) -> Result<Option<String>, ResourceError> {
        let apigw = &self.aws.apigw;
        let Some(want) = &spec.authorizer else {
            return Ok(None);
        };
        let jwt = JwtConfiguration::builder()
            .issuer(&want.issuer)
            .set_audience(Some(want.audience.clone()))
            .build();
        Ok(Some(match have {
            Some((id, have)) if have == *want => id,
            Some((id, _)) => {
                retry::write(&parent(api_id), || async {
                    apigw
                        .update_authorizer()
                        .api_id(api_id)
                        .authorizer_id(&id)
                        .name(&want.name)
                        .authorizer_type(AuthorizerType::Jwt)
                        .set_identity_source(Some(want.identity_source.clone()))
                        .jwt_configuration(jwt.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error(&self.what("UpdateAuthorizer"), e))
                })
                .await?;
                id
            }
            None => retry::write(&parent(api_id), || async {
                apigw
                    .create_authorizer()
                    .api_id(api_id)
                    .name(&want.name)
                    .authorizer_type(AuthorizerType::Jwt)
                    .set_identity_source(Some(want.identity_source.clone()))
                    .jwt_configuration(jwt.clone())
                    .send()
                    .await
                    .map_err(|e| aws_error(&self.what("CreateAuthorizer"), e))
            })
            .await?
            .authorizer_id
            .unwrap_or_default(),
        }))
    }

    async fn converge_integration(
        &self,
        api_id: &str,
        spec: &HttpApiSpec,
        have: Option<(String, Integration)>,
    ) -> Result<String, ResourceError> {
        let apigw = &self.aws.apigw;
        let want = &spec.integration;
        let timeout = i32::try_from(want.timeout_ms).unwrap_or(i32::MAX);
        let what = self.what("CreateIntegration");
        Ok(match have {
            Some((id, have)) if have == *want => id,
            Some((id, _)) => {
                retry::write(&parent(api_id), || async {
                    apigw
                        .update_integration()
                        .api_id(api_id)
                        .integration_id(&id)
                        .integration_type(IntegrationType::from(want.kind.as_str()))
                        .integration_uri(want.uri.as_str())
                        .payload_format_version(&want.payload_format_version)
                        .timeout_in_millis(timeout)
                        .send()
                        .await
                        .map_err(|e| aws_error(&self.what("UpdateIntegration"), e))
                })
                .await?;
                id
            }
            // A repeated call makes a second integration: at most once.
            // One write to the API at a time: the lock is held for each
            // attempt only, not while the policy waits or looks for a lost
            // answer's result.
            None => match create_once(
                &what,
                || async {
                    let _turn = retry::serial(&parent(api_id)).await;
                    apigw
                        .create_integration()
                        .api_id(api_id)
                        .integration_type(IntegrationType::from(want.kind.as_str()))
                        .integration_uri(want.uri.as_str())
                        .payload_format_version(&want.payload_format_version)
                        .timeout_in_millis(timeout)
                        .customize()
                        .config_override(no_retries())
                        .send()
                        .await
                },
                || async {
                    Ok(self
                        .parts(api_id, spec)
                        .await?
                        .integration
                        .map(|(id, _)| id))
                },
            )
            .await?
            {
                Created::New(i) => i.integration_id.unwrap_or_default(),
                Created::Found(id) => id,
            },
        })
    }

    /// Every declared route created or corrected; every other route of the
    /// API deleted (the API is ours, so its routes are).
    async fn converge_routes(
        &self,
        api_id: &str,
        spec: &HttpApiSpec,
        mut have: BTreeMap<String, (String, Route)>,
        integration_id: &str,
        authorizer_id: Option<&str>,
    ) -> Result<(), ResourceError> {
        // The routes are independent of each other: concurrently.
        let declared = spec.routes.iter().map(|(key, want)| {
            let live = have.remove(key);
            self.converge_route(api_id, key, want, live, integration_id, authorizer_id)
        });
        futures::future::try_join_all(declared.collect::<Vec<_>>()).await?;
        let undeclared = have.into_iter().map(|(key, (route_id, _))| async move {
            tracing::info!(
                "{}: deleting route {key}, which is not declared",
                self.declared.name
            );
            retry::write(&parent(api_id), || async {
                deleted(
                    self.aws
                        .apigw
                        .delete_route()
                        .api_id(api_id)
                        .route_id(&route_id)
                        .send()
                        .await,
                    "NotFoundException",
                    &self.what("DeleteRoute"),
                )
            })
            .await
        });
        futures::future::try_join_all(undeclared).await?;
        Ok(())
    }

    async fn converge_route(
        &self,
        api_id: &str,
        key: &str,
        want: &Route,
        have: Option<(String, Route)>,
        integration_id: &str,
        authorizer_id: Option<&str>,
    ) -> Result<(), ResourceError> {
        let apigw = &self.aws.apigw;
        let target = format!("integrations/{integration_id}");
        let kind = AuthorizationType::from(want.authorization_type.as_str());
        // JWT names its authorizer; otherwise the route is detached from any
        // (the public page's route, on an API whose other routes take a JWT).
        let authorizer_id = authorizer_id.filter(|_| want.to_authorizer);
        let authorizer = authorizer_id.unwrap_or_default();
        match have {
            Some((_, have)) if have == *want => {}
            Some((route_id, _)) => {
                retry::write(&parent(api_id), || async {
                    apigw
                        .update_route()
                        .api_id(api_id)
                        .route_id(&route_id)
                        .target(&target)
                        .authorization_type(kind.clone())
                        .authorizer_id(authorizer)
                        .set_authorization_scopes(Some(want.authorization_scopes.clone()))
                        .send()
                        .await
                        .map_err(|e| aws_error(&self.what("UpdateRoute"), e))
                })
                .await?;
            }
            None => {
                retry::write(&parent(api_id), || async {
                    apigw
                        .create_route()
                        .api_id(api_id)
                        .route_key(key)
                        .target(&target)
                        .authorization_type(kind.clone())
                        .set_authorizer_id(authorizer_id.map(str::to_owned))
                        .set_authorization_scopes(
                            (!want.authorization_scopes.is_empty())
                                .then(|| want.authorization_scopes.clone()),
                        )
                        .send()
                        .await
                        .map(|_| ())
                        .or_else(|e| made_already(aws_error(&self.what("CreateRoute"), e)))
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn converge_stage(
        &self,
        api_id: &str,
        spec: &HttpApiSpec,
        have: Option<Stage>,
    ) -> Result<(), ResourceError> {
        let apigw = &self.aws.apigw;
        let settings = spec.stage.throttling.as_ref().map(|t| {
            RouteSettings::builder()
                .throttling_rate_limit(t.rate_limit)
                .throttling_burst_limit(i32::try_from(t.burst_limit).unwrap_or(i32::MAX))
                .build()
        });
        if have.as_ref() != Some(&spec.stage) {
            if have.is_some() {
                // In place: the stage keeps its deployments and invoke URL.
                retry::write(&parent(api_id), || async {
                    apigw
                        .update_stage()
                        .api_id(api_id)
                        .stage_name(&spec.stage.name)
                        .auto_deploy(spec.stage.auto_deploy)
                        .set_default_route_settings(settings.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error(&self.what("UpdateStage"), e))
                })
                .await?;
                return Ok(());
            }
            retry::write(&parent(api_id), || async {
                apigw
                    .create_stage()
                    .api_id(api_id)
                    .stage_name(&spec.stage.name)
                    .auto_deploy(spec.stage.auto_deploy)
                    .set_default_route_settings(settings.clone())
                    .send()
                    .await
                    .map(|_| ())
                    .or_else(|e| made_already(aws_error(&self.what("CreateStage"), e)))
            })
            .await?;
        }
        Ok(())
    }

    fn api_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/apis/{api_id}",
            self.aws.partition(),
            self.aws.region
        )
    }
}

/// The parent every write to an API's parts goes through: API Gateway
/// answers concurrent writes to one API with `409 ConflictException:
/// Unable to complete operation due to concurrent modification` (apigatewayv2
/// API reference, "Common errors"; terraform-provider-aws #18018, #37897).
fn parent(api_id: &str) -> String {
    format!("apigateway/{api_id}")
}

/// Whether `tags` carry every ownership tag in `declared` (managed-by, stack).
fn owned(tags: Option<&std::collections::HashMap<String, String>>, declared: &Tags) -> bool {
    use crate::engine::plan::{MANAGED_BY_KEY, STACK_KEY};
    let tags = tags.cloned().unwrap_or_default();
    [MANAGED_BY_KEY, STACK_KEY]
        .iter()
        .all(|k| tags.contains_key(*k) && tags.get(*k) == declared.get(*k))
}

fn no_retries() -> aws_sdk_apigatewayv2::config::Builder {
    aws_sdk_apigatewayv2::config::Builder::default()
        .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled())
}

#[async_trait]
impl TypedKind for HttpApi {
    type Spec = HttpApiSpec;
    const KIND: &'static str = "http-api";
    const REPLACE_ON: &'static [Field<HttpApiSpec>] = &[HttpApiSpec::PROTOCOL_TYPE];

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let spec = self.spec()?;
        let apis = self.same_named().await?;
        let (ours, duplicates) = oldest_owned(&apis, &spec);
        let api = match ours.or(apis.first()) {
            Some(api) => api,
            None => return Ok(None),
        };
        let api_id = api.api_id().unwrap_or_default().to_owned();
        let (parts, execution_arn) = tokio::join!(
            self.parts_or_gone(&api_id, &spec),
            self.aws.arn("execute-api", &api_id)
        );
        let Some(parts) = parts? else {
            return Ok(None);
        };
        let mut live = Live {
            fields: live_fields(api, parts),
            ..Live::default()
        };
        live.attrs.insert(ID.into(), api_id.clone());
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        live.attrs.insert(
            ENDPOINT.into(),
            api.api_endpoint().unwrap_or_default().to_owned(),
        );
        live.attrs.insert(EXECUTION_ARN.into(), execution_arn?);
        live.attrs.insert(ARN.into(), self.api_arn(&api_id));
        live.duplicates = duplicates;
        Ok(Some(live))
    }

    async fn create(&self, spec: &HttpApiSpec, _: &Fields) -> Result<Live, ResourceError> {
        // API Gateway makes a second same-named API for a repeated call: at most once.
        let created = create_once(
            &self.what("CreateApi"),
            || {
                self.aws
                    .apigw
                    .create_api()
                    .name(&self.declared.name)
                    .protocol_type(ProtocolType::from(spec.protocol_type.as_str()))
                    .set_tags(Some(spec.tags.clone().into_iter().collect()))
                    .customize()
                    .config_override(no_retries())
                    .send()
            },
            || async {
                let apis = self.same_named().await?;
                Ok(apis
                    .iter()
                    .find(|a| owned(a.tags(), &spec.tags))
                    .and_then(|a| a.api_id().map(str::to_owned)))
            },
        )
        .await?;
        let (api_id, parts) = match created {
            // A new API has no parts: nothing to read before creating them.
            Created::New(api) => (
                api.api_id.unwrap_or_default(),
                Parts {
                    integration: None,
                    authorizer: None,
                    routes: BTreeMap::new(),
                    stage: None,
                },
            ),
            Created::Found(id) => {
                let parts = self.parts(&id, spec).await?;
                (id, parts)
            }
        };
        self.converge_parts(&api_id, spec, parts).await?;
        read_back(
            Resource::read(self).await?,
            &format!("HTTP API {}", self.declared.name),
        )
    }

    /// The integration, authorizer, routes and stage, each brought to what is declared.
    async fn update(&self, change: &Update<'_, HttpApiSpec>) -> Result<(), ResourceError> {
        let api_id = api_id_of(change.live);
        let parts = self.parts(api_id, change.spec).await?;
        self.converge_parts(api_id, change.spec, parts).await
    }

    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        let api_id = api_id_of(live);
        retry::write(&parent(api_id), || async {
            self.aws
                .apigw
                .delete_api()
                .api_id(api_id)
                .send()
                .await
                .done(&self.what("DeleteApi"))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

fn api_id_of(live: &Live) -> &str {
    live.attrs.get(ID).map_or("", String::as_str)
}

/// Tag writes are writes to the API: one at a time with its other writes.
#[async_trait]
impl Tagging for HttpApi {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        let api_id = api_id_of(live);
        let _held = retry::serial(&parent(api_id)).await;
        self.aws
            .apigw
            .tag_resource()
            .resource_arn(self.api_arn(api_id))
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .done(&self.what("TagResource"))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        let api_id = api_id_of(live);
        let _held = retry::serial(&parent(api_id)).await;
        self.aws
            .apigw
            .untag_resource()
            .resource_arn(self.api_arn(api_id))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&self.what("UntagResource"))
    }
}

const STAGE_SUPPRESSIONS: &[crate::kind::export::Suppression] = &[(
    "CKV_AWS_95",
    "Each request is logged by the function itself (request id, status, size) in its own log group; API Gateway access logs would duplicate them.",
)];

impl Export for HttpApi {
    /// The API and, as separate CloudFormation resources, the integration,
    /// route and `$default` stage this kind holds as fields.
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec = self.spec()?;
        let api = crate::kind::export::logical_id(&self.declared.address);
        let api_ref = json!({ "Ref": api });
        let mut parts = vec![Part::main(
            "AWS::ApiGatewayV2::Api",
            object([
                ("Name", json!(self.declared.name)),
                ("ProtocolType", json!(spec.protocol_type)),
                ("Tags", json!(spec.tags)),
            ]),
        )];
        parts.push(Part {
            suffix: "Integration".into(),
            type_name: "AWS::ApiGatewayV2::Integration",
            properties: object([
                ("ApiId", api_ref.clone()),
                ("IntegrationType", json!(spec.integration.kind)),
                ("IntegrationUri", json!(spec.integration.uri.as_str())),
                (
                    "PayloadFormatVersion",
                    json!(spec.integration.payload_format_version),
                ),
                ("TimeoutInMillis", json!(spec.integration.timeout_ms)),
            ]),
            suppressions: &[],
        });
        if let Some(a) = &spec.authorizer {
            parts.push(Part {
                suffix: "Authorizer".into(),
                type_name: "AWS::ApiGatewayV2::Authorizer",
                properties: object([
                    ("ApiId", api_ref.clone()),
                    ("Name", json!(a.name)),
                    ("AuthorizerType", json!("JWT")),
                    ("IdentitySource", json!(a.identity_source)),
                    (
                        "JwtConfiguration",
                        json!({"Issuer": a.issuer, "Audience": a.audience}),
                    ),
                ]),
                suppressions: &[],
            });
        }
        for (key, route) in &spec.routes {
            parts.push(route_part(&api, key, route, spec.authorizer.is_some()));
        }
        let null = serde_json::Value::Null;
        parts.push(Part {
            suffix: "Stage".into(),
            type_name: "AWS::ApiGatewayV2::Stage",
            properties: object([
                ("ApiId", api_ref),
                ("StageName", json!(spec.stage.name)),
                ("AutoDeploy", json!(spec.stage.auto_deploy)),
                (
                    "DefaultRouteSettings",
                    spec.stage.throttling.as_ref().map_or(null, |t| {
                        json!({
                            "ThrottlingRateLimit": t.rate_limit,
                            "ThrottlingBurstLimit": t.burst_limit,
                        })
                    }),
                ),
            ]),
            suppressions: STAGE_SUPPRESSIONS,
        });
        Ok(parts)
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        match attr {
            ID => Some(format!("${{{id}}}")),
            ENDPOINT => Some(format!("${{{id}.ApiEndpoint}}")),
            EXECUTION_ARN => Some(format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{id}}}"
            )),
            NAME => Some(self.declared.name.clone()),
            _ => None,
        }
    }
}

/// API Gateway authorises by HTTP method on paths; an API's id is chosen by
/// AWS, so its paths are `/apis/*`.
impl Access for HttpApi {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["apigateway:GET"],
            vec![api_path("/apis"), api_path("/apis/*")],
        )]
    }

    /// HTTP APIs are named by id, not by name, so their ARNs cannot say
    /// whose an API is: every write is held to this stack's APIs by their
    /// `stack` tag (`aws:ResourceTag`, which the Service Authorization
    /// Reference lists for the API and each of its parts; creating one by
    /// `aws:RequestTag`, the tags `CreateApi` sends). With the preview role's
    /// `{name}-pr-*` the pattern covers every preview stack and never `{name}`.
    fn write_access(&self) -> Vec<Grant> {
        let stack = self
            .spec()
            .ok()
            .and_then(|s| s.tags.get(crate::engine::plan::STACK_KEY).cloned())
            .unwrap_or_default();
        let ours = vec![Text::literal(stack)];
        vec![
            // CreateApi posts to the collection, with the stack's tags.
            Grant::on(&["apigateway:POST"], vec![api_path("/apis")]).when(
                "StringLike",
                REQUEST_STACK_TAG,
                ours.clone(),
            ),
            // Its integration, route and stage post to the API's own
            // collections; PATCH and DELETE act on the API or one of its
            // parts, never on `/apis` itself.
            Grant::on(
                &["apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
                vec![api_path("/apis/*")],
            )
            .when("StringLike", RESOURCE_STACK_TAG, ours.clone()),
            // And a tag write may not relabel it as another stack's.
            Grant::on(
                &["apigateway:POST", "apigateway:DELETE"],
                vec![api_path("/tags/*")],
            )
            .when("StringLike", RESOURCE_STACK_TAG, ours.clone())
            .when("StringLikeIfExists", REQUEST_STACK_TAG, ours),
        ]
    }
}

/// A route's part in the template: `Route` and its key's words,
/// `GET /images/{id}` → `RouteGetImagesId`.
pub fn route_suffix(key: &str) -> String {
    let words = key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        });
    std::iter::once("Route".to_owned()).chain(words).collect()
}

/// The condition keys of the ownership tag `stack` ([`crate::engine::plan::STACK_KEY`]).
const REQUEST_STACK_TAG: &str = "aws:RequestTag/stack";
const RESOURCE_STACK_TAG: &str = "aws:ResourceTag/stack";

fn api_path(path: &str) -> Text {
    Text::from(format!(
        "arn:${{{a}.partition}}:apigateway:${{{a}.region}}::{path}",
        a = crate::kind::ACCOUNT
    ))
}

/// A route's CloudFormation part (`AWS::ApiGatewayV2::Route`) of the API
/// whose logical id is `api`.
fn route_part(api: &str, key: &str, route: &Route, has_authorizer: bool) -> Part {
    use serde_json::json;
    let null = serde_json::Value::Null;
    let target = route
        .to_integration
        .then(|| json!({"Fn::Sub": format!("integrations/${{{api}Integration}}")}));
    let jwt = route.to_authorizer && has_authorizer;
    Part {
        suffix: route_suffix(key).into(),
        type_name: "AWS::ApiGatewayV2::Route",
        properties: object([
            ("ApiId", json!({ "Ref": api })),
            ("RouteKey", json!(key)),
            ("Target", target.unwrap_or(null.clone())),
            ("AuthorizationType", json!(route.authorization_type)),
            (
                "AuthorizerId",
                if jwt {
                    json!({ "Ref": format!("{api}Authorizer") })
                } else {
                    null.clone()
                },
            ),
            (
                "AuthorizationScopes",
                if route.authorization_scopes.is_empty() {
                    null
                } else {
                    json!(route.authorization_scopes)
                },
            ),
        ]),
        suppressions: &[],
    }
}

/// The owned API this stack keeps and the owned duplicates to delete. AWS
/// does not make API names unique: two runs racing (before the stack lock)
/// or a lost CreateApi answer can leave two owned ones. Kept: the oldest
/// (CreatedDate, then id), which the rest of the stack was wired to first;
/// the others are planned as deletions, and the invoke permission follows
/// the kept API's id.
fn oldest_owned<'a>(apis: &'a [Api], spec: &HttpApiSpec) -> (Option<&'a Api>, Vec<(String, Live)>) {
    let mut ours: Vec<&Api> = apis
        .iter()
        .filter(|a| owned(a.tags(), &spec.tags))
        .collect();
    ours.sort_by_key(|a| {
        (
            a.created_date().map(|d| (d.secs(), d.subsec_nanos())),
            a.api_id().map(str::to_owned),
        )
    });
    let duplicates = ours
        .iter()
        .skip(1)
        .map(|a| {
            let id = a.api_id().unwrap_or_default().to_owned();
            let mut live = Live::default();
            live.attrs.insert(ID.into(), id.clone());
            (id, live)
        })
        .collect();
    (ours.first().copied(), duplicates)
}

/// The API's fields as the spec names them, from the API and its parts.
fn live_fields(api: &Api, parts: Parts) -> Fields {
    let json = |v: Option<Value>| v.unwrap_or(Value::Null);
    let routes: BTreeMap<String, Route> = parts
        .routes
        .into_iter()
        .map(|(key, (_, r))| (key, r))
        .collect();
    Fields::from([
        (
            "protocol_type".into(),
            Value::from(api.protocol_type().map(|p| p.as_str()).unwrap_or_default()),
        ),
        (
            "integration".into(),
            json(
                parts
                    .integration
                    .and_then(|(_, i)| serde_json::to_value(i).ok()),
            ),
        ),
        (
            "authorizer".into(),
            json(
                parts
                    .authorizer
                    .and_then(|(_, a)| serde_json::to_value(a).ok()),
            ),
        ),
        (
            "routes".into(),
            serde_json::to_value(routes).unwrap_or(Value::Null),
        ),
        (
            "stage".into(),
            json(parts.stage.and_then(|s| serde_json::to_value(s).ok())),
        ),
        (
            tags::FIELD.into(),
            tags::to_value(
                api.tags()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        ),
    ])
}
