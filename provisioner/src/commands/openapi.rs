//! `provisioner openapi`: the HTTP API as an OpenAPI 3 document, for
//! Postman and other clients. Made from the declaration's route table
//! (`declare::ROUTES`), the shared contract (`couch_contract::routes`: each
//! route's answers) and the stack's `http:` section (its authorization);
//! no AWS call.

use std::process::ExitCode;

use anyhow::{Context, Result};
use couch_contract::routes::Route;
use serde_json::{Map, Value, json};

use crate::stack::{self, Auth, Stack};

/// Print the HTTP API as an OpenAPI 3 document (routes, bodies, answers,
/// the stack's authorization); no AWS call. Import it into Postman.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// The API's URL: `api_url` of `provisioner outputs` (its route is
    /// dropped). Without it the document names the execute-api URL with the
    /// API's id as a variable to fill in.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

pub fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let s = stack::load_named(args.file.stack.as_path(), inputs.name.as_deref())?;
    let doc = document(&s, args.server.as_deref());
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).context("writing the document")?
    );
    Ok(ExitCode::SUCCESS)
}

/// The JSON schemas of the bodies (`components.schemas`), as the HTTP
/// function writes and reads them (`functions/http`).
fn schemas() -> Value {
    let string = json!({"type": "string"});
    json!({
        "Prompt": {
            "type": "object",
            "required": ["prompt"],
            "properties": {"prompt": {
                "type": "string",
                "minLength": 1,
                "description": "What to draw. The model's family sets the longest prompt it takes.",
                "example": "me on top of a pyramid"
            }}
        },
        "Image": {
            "type": "object",
            "required": ["s3_uri", "bucket", "key", "url"],
            "properties": {
                "s3_uri": string, "bucket": string, "key": string,
                "seed": {"type": "integer", "format": "int64"},
                "model": string,
                "url": {"type": "string", "format": "uri", "description": "A presigned link to the PNG, valid for an hour."}
            }
        },
        "Submitted": {
            "type": "object",
            "required": ["id", "status", "status_url"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": ["queued"]},
                "status_url": {"type": "string", "description": "The path of `GET /images/{id}` for this request."}
            }
        },
        "Status": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["queued", "generating", "failed", "done"]},
                "reason": {"type": "string", "description": "Why it failed (`failed` only)."},
                "s3_uri": string,
                "url": {"type": "string", "format": "uri", "description": "A presigned link to the PNG (`done` only)."},
                "model": string,
                "seed": {"type": "integer", "format": "int64"}
            }
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": string, "request_id": string}
        }
    })
}

/// The schema a route's successful answer has.
fn success_schema(route: &Route) -> &'static str {
    match route.method {
        _ if route.is_public() => "Page",
        "GET" => "Status",
        _ if route.path == couch_contract::routes::SUBMIT.path => "Submitted",
        _ => "Image",
    }
}

/// The stack's authorization as security schemes, and what each route requires.
fn security(s: &Stack) -> (Map<String, Value>, Value) {
    let mut schemes = Map::new();
    let required = match &s.http.auth {
        Auth::None => json!([]),
        Auth::Iam => {
            schemes.insert(
                "sigv4".into(),
                json!({
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (service execute-api) by an IAM identity allowed execute-api:Invoke; Postman: Authorization > AWS Signature."
                }),
            );
            json!([{"sigv4": []}])
        }
        Auth::Jwt(jwt) => {
            schemes.insert(
                "jwt".into(),
                json!({
                    "type": "openIdConnect",
                    "openIdConnectUrl": format!("{}/.well-known/openid-configuration", jwt.issuer.trim_end_matches('/')),
                    "description": format!("A JWT from {} for one of the audiences {}, as `Authorization: Bearer <token>`.", jwt.issuer, jwt.audience.join(", ")),
                }),
            );
            json!([{"jwt": jwt.scopes}])
        }
    };
    (schemes, required)
}

/// The document: every declared route with its request, its answers and
/// the stack's authorization.
pub fn document(s: &Stack, server: Option<&str>) -> Value {
    let (schemes, required) = security(s);
    let mut paths = Map::new();
    for (route, _, _) in crate::declare::ROUTES {
        let operation = operation(&route, &required);
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.to_lowercase()] = operation;
    }
    let servers = match server {
        Some(url) => {
            let url = url.trim_end_matches('/');
            let base = couch_contract::routes::ALL
                .iter()
                .find_map(|r| url.strip_suffix(r.path))
                .unwrap_or(url);
            json!([{"url": base, "description": format!("Stack {}", s.name)}])
        }
        None => json!([{
            "url": "https://{api_id}.execute-api.{region}.amazonaws.com",
            "description": format!("Stack {}: its API's id is in `api_url` (`provisioner outputs`)", s.name),
            "variables": {
                "api_id": {"default": "API_ID", "description": "The HTTP API's id."},
                "region": {"default": s.region, "description": "The stack's Region."}
            }
        }]),
    };
    let mut components = json!({"schemas": schemas()});
    if !schemes.is_empty() {
        components["securitySchemes"] = Value::Object(schemes);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": format!("Couch Explorers image API ({})", s.name),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Send a prompt, get a picture made by an Amazon Bedrock image model and stored in S3: at once (`POST /image_generator`), or queued (`POST /images`, then `GET /images/{id}`)."
        },
        "servers": servers,
        "paths": paths,
        "components": components,
    })
}

/// A route's operation: its request, every answer of the contract, and
/// the authorization the stack requires.
fn operation(route: &Route, required: &Value) -> Value {
    let mut responses = Map::new();
    for a in route.answers() {
        let schema = if a.status < 300 {
            success_schema(route)
        } else {
            "Error"
        };
        let mut response = if schema == "Page" {
            json!({
                "description": a.when,
                "content": {"text/html": {"schema": {"type": "string"}}}
            })
        } else {
            json!({
                "description": a.when,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
            })
        };
        if a.status == 202 {
            response["headers"] = json!({"Location": {"description": "The status's path.", "schema": {"type": "string"}}});
        }
        if a.status == 429 {
            response["headers"] = json!({"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}});
        }
        responses.insert(a.status.to_string(), response);
    }
    let mut operation = json!({
        "operationId": operation_id(route),
        "summary": summary(route),
        "responses": responses,
        // The page is public (`Route::is_public`): API Gateway asks no one.
        "security": if route.is_public() { json!([]) } else { required.clone() },
    });
    if route.method == "POST" {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Prompt"}}}
        });
    }
    if route.path.contains("{id}") {
        operation["parameters"] = json!([{
            "name": "id", "in": "path", "required": true,
            "description": "The id `POST /images` answered.",
            "schema": {"type": "string", "format": "uuid"}
        }]);
    }
    operation
}

fn operation_id(route: &Route) -> &'static str {
    match (route.method, route.path) {
        _ if route.is_public() => "page",
        ("GET", _) => "imageStatus",
        (_, p) if p == couch_contract::routes::SUBMIT.path => "submitImage",
        _ => "generateImage",
    }
}

fn summary(route: &Route) -> &'static str {
    match operation_id(route) {
        "page" => "A page to try the API in a browser (no authorization)",
        "imageStatus" => "A queued request's status, and its picture when done",
        "submitImage" => "Queue a prompt; answers at once with the request's id",
        _ => "Make a picture now and answer with its link",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stack(http: &str) -> Stack {
        let text = format!(
            "name: couch-api\nimages: {{ bucket: b-images, prefix: p }}\nalarm: {{ email: a@example.com }}\nhttp: {http}\n"
        );
        stack::parse(Path::new("s.yaml"), &text).unwrap()
    }

    #[test]
    fn every_declared_route_and_answer_is_in_the_document() {
        let doc = document(&stack("{ auth: none }"), None);
        for (route, _, _) in crate::declare::ROUTES {
            let op = &doc["paths"][route.path][route.method.to_lowercase()];
            assert!(op.is_object(), "{} missing", route.key());
            for a in route.answers() {
                let r = &op["responses"][a.status.to_string()];
                assert_eq!(r["description"], a.when, "{} {}", route.key(), a.status);
            }
            assert_eq!(
                op["responses"].as_object().unwrap().len(),
                route.answers().len()
            );
            assert_eq!(op["security"], json!([]));
        }
        assert!(doc["components"].get("securitySchemes").is_none());
        assert_eq!(
            doc["servers"][0]["variables"]["region"]["default"],
            "eu-west-1"
        );
    }

    #[test]
    fn the_stacks_authorization_is_the_documents() {
        let iam = document(
            &stack("{ auth: iam }"),
            Some("https://abc.execute-api.eu-west-1.amazonaws.com/image_generator"),
        );
        assert_eq!(
            iam["paths"]["/images"]["post"]["security"],
            json!([{"sigv4": []}])
        );
        assert_eq!(
            iam["servers"][0]["url"],
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        );
        let jwt = document(
            &stack(
                "{ auth: jwt, jwt: { issuer: \"https://id.example.com\", audience: [app], scopes: [images] } }",
            ),
            None,
        );
        assert_eq!(
            jwt["paths"]["/images/{id}"]["get"]["security"],
            json!([{"jwt": ["images"]}])
        );
        assert_eq!(
            jwt["components"]["securitySchemes"]["jwt"]["openIdConnectUrl"],
            "https://id.example.com/.well-known/openid-configuration"
        );
    }
}
