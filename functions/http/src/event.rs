//! API Gateway events, both payload versions, reduced to what the handler needs.

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest,
};
use base64::Engine as _;
use imagegen::status::Owner;
use serde_json::Value;

/// A request as the handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// The body, decoded if API Gateway sent it base64-encoded.
    pub body: Option<Vec<u8>>,
    /// API Gateway's request id, when present.
    pub request_id: Option<String>,
    /// Who is asking, as API Gateway's authorizer said.
    pub caller: Caller,
}

/// Who is asking: what API Gateway's authorizer put in the event's
/// `requestContext`, which API Gateway writes and the caller cannot (never a
/// header, the body, or the function's configuration). Payload 2.0 (the
/// stack's HTTP API): `requestContext.authorizer.jwt.claims.sub` for a JWT
/// authorizer, `requestContext.authorizer.iam.userArn` for `AWS_IAM`
/// (API Gateway developer guide, "Create AWS Lambda proxy integrations for
/// HTTP APIs", payload format 2.0:
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html;
/// `aws_lambda_events`' `ApiGatewayRequestAuthorizer{Jwt,Iam}Description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No authorizer ran: the stack's `http.auth: none`. Nobody owns what
    /// such a caller asks for, and whoever has a request's id reads it.
    Anonymous,
    /// The authorizer named the caller: what they ask for is theirs.
    Known(Owner),
    /// An authorizer ran but named no one this function can own a request by
    /// (a token without `sub`, IAM without `userArn`, a Lambda authorizer's
    /// context): such a caller may submit nothing and reads only unowned
    /// requests.
    Unnamed,
}

impl Caller {
    /// The owner of what this caller asks for (`None`: anonymous or unnamed).
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            Caller::Known(o) => Some(o),
            Caller::Anonymous | Caller::Unnamed => None,
        }
    }
}

fn named(who: Option<&String>) -> Option<String> {
    who.filter(|w| !w.is_empty()).cloned()
}

/// Payload 2.0's `requestContext.authorizer`.
fn caller_v2(authorizer: Option<&ApiGatewayRequestAuthorizer>) -> Caller {
    let Some(a) = authorizer else {
        return Caller::Anonymous;
    };
    let jwt = a.jwt.as_ref();
    let iam = a.iam.as_ref();
    if jwt.is_none() && iam.is_none() && a.fields.values().all(Value::is_null) {
        return Caller::Anonymous;
    }
    let sub = jwt.and_then(|j| named(j.claims.get("sub")));
    let arn = iam.and_then(|i| named(i.user_arn.as_ref()));
    match (sub, arn) {
        (Some(sub), None) if iam.is_none() => Caller::Known(Owner::Jwt(sub)),
        (None, Some(arn)) if jwt.is_none() => Caller::Known(Owner::Iam(arn)),
        // Nobody named, or two authorizers at once: no owner to trust.
        _ => Caller::Unnamed,
    }
}

/// Payload 1.0's `requestContext`: `identity.userArn` (IAM) or
/// `authorizer.claims.sub` (JWT / Cognito); an authorizer with anything
/// else non-null names no one. Same page, payload format 1.0.
fn caller_v1(authorizer: &ApiGatewayRequestAuthorizer, user_arn: Option<&String>) -> Caller {
    let sub = authorizer
        .fields
        .get("claims")
        .and_then(|c| c.get("sub"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let arn = named(user_arn);
    let other = authorizer.fields.values().any(|v| !v.is_null());
    match (sub, arn) {
        (Some(sub), None) => Caller::Known(Owner::Jwt(sub.to_owned())),
        (None, Some(arn)) => Caller::Known(Owner::Iam(arn)),
        (None, None) if !other => Caller::Anonymous,
        _ => Caller::Unnamed,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not an API Gateway event: {0}")]
pub struct NotApiGateway(String);

fn decode_body(body: Option<String>, base64: bool) -> Result<Option<Vec<u8>>, NotApiGateway> {
    match body {
        None => Ok(None),
        Some(b) if base64 => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(Some)
            .map_err(|e| NotApiGateway(format!("body marked base64 but is not: {e}"))),
        Some(b) => Ok(Some(b.into_bytes())),
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Parses payload 2.0 (`"version": "2.0"`) or payload 1.0 (`httpMethod`).
pub fn parse(event: Value) -> Result<Request, NotApiGateway> {
    if event.get("version").and_then(Value::as_str) == Some("2.0") {
        let e: ApiGatewayV2httpRequest =
            serde_json::from_value(event).map_err(|e| NotApiGateway(e.to_string()))?;
        Ok(Request {
            method: e.request_context.http.method.to_string(),
            path: e
                .raw_path
                .or(e.request_context.http.path)
                .unwrap_or_default(),
            content_type: header(&e.headers, "content-type"),
            body: decode_body(e.body, e.is_base64_encoded)?,
            caller: caller_v2(e.request_context.authorizer.as_ref()),
            request_id: e.request_context.request_id,
        })
    } else if event.get("httpMethod").is_some() {
        let e: ApiGatewayProxyRequest =
            serde_json::from_value(event).map_err(|e| NotApiGateway(e.to_string()))?;
        Ok(Request {
            method: e.http_method.to_string(),
            path: e.path.unwrap_or_default(),
            content_type: header(&e.headers, "content-type"),
            body: decode_body(e.body, e.is_base64_encoded)?,
            caller: caller_v1(
                &e.request_context.authorizer,
                e.request_context.identity.user_arn.as_ref(),
            ),
            request_id: e.request_context.request_id,
        })
    } else {
        Err(NotApiGateway("neither payload 2.0 nor 1.0".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A payload-2.0 event with `authorizer` in its request context (none: `Value::Null`).
    fn v2(authorizer: Value) -> Value {
        let mut e = json!({
            "version": "2.0", "routeKey": "POST /images", "rawPath": "/images", "rawQueryString": "",
            "headers": {},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
                "http": {"method": "POST", "path": "/images", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                "requestId": "r", "routeKey": "POST /images", "stage": "$default", "time": "x", "timeEpoch": 0
            },
            "isBase64Encoded": false
        });
        if !authorizer.is_null() {
            e["requestContext"]["authorizer"] = authorizer;
        }
        e
    }

    fn caller(event: Value) -> Caller {
        parse(event).unwrap().caller
    }

    const ARN: &str = "arn:aws:iam::123456789012:user/ana";

    #[test]
    fn a_jwt_authorizers_sub_and_an_iam_callers_arn_name_the_caller() {
        let jwt = json!({"jwt": {"claims": {"sub": "auth0|ana", "iss": "https://idp/", "exp": "1612061676"}, "scopes": null}});
        assert_eq!(
            caller(v2(jwt)),
            Caller::Known(Owner::Jwt("auth0|ana".into()))
        );
        let iam = json!({"iam": {"accessKey": "AKIA", "accountId": "123456789012", "callerId": "AIDA",
            "cognitoIdentity": null, "principalOrgId": null, "userArn": ARN, "userId": "AIDA"}});
        assert_eq!(caller(v2(iam)), Caller::Known(Owner::Iam(ARN.into())));
    }

    #[test]
    fn no_authorizer_is_anonymous_and_one_naming_nobody_is_unnamed() {
        assert_eq!(caller(v2(Value::Null)), Caller::Anonymous);
        assert_eq!(caller(v2(json!({}))), Caller::Anonymous);
        for nobody in [
            json!({"jwt": {"claims": {"iss": "https://idp/"}, "scopes": ["images"]}}),
            json!({"jwt": {"claims": {"sub": ""}}}),
            json!({"iam": {"accountId": "123456789012"}}),
            json!({"lambda": {"user": "ana"}}),
            // Two authorizers at once: trust neither.
            json!({"jwt": {"claims": {"sub": "ana"}}, "iam": {"userArn": ARN}}),
        ] {
            assert_eq!(caller(v2(nobody.clone())), Caller::Unnamed, "{nobody}");
        }
    }

    #[test]
    fn nothing_the_caller_sends_names_them() {
        let mut e = v2(Value::Null);
        e["headers"] = json!({"x-amz-user-arn": ARN, "authorization": "Bearer x"});
        e["body"] = json!(json!({"prompt": "a", "owner": format!("iam:{ARN}")}).to_string());
        e["queryStringParameters"] = json!({"sub": "ana"});
        assert_eq!(caller(e), Caller::Anonymous);
    }

    #[test]
    fn payload_1_0_names_callers_from_its_own_fields() {
        let v1 = |authorizer: Value, user_arn: Value| {
            json!({
                "resource": "/images", "path": "/images", "httpMethod": "POST", "headers": {},
                "requestContext": {"requestId": "r", "stage": "prod", "httpMethod": "POST",
                    "resourcePath": "/images", "authorizer": authorizer,
                    "identity": {"sourceIp": "1.2.3.4", "userArn": user_arn}},
                "isBase64Encoded": false
            })
        };
        // As AWS documents a request without authorization: claims and scopes null.
        let none = json!({"claims": null, "scopes": null});
        assert_eq!(caller(v1(none.clone(), Value::Null)), Caller::Anonymous);
        assert_eq!(
            caller(v1(
                json!({"claims": {"sub": "ana"}, "scopes": null}),
                Value::Null
            )),
            Caller::Known(Owner::Jwt("ana".into()))
        );
        assert_eq!(
            caller(v1(none, json!(ARN))),
            Caller::Known(Owner::Iam(ARN.into()))
        );
        assert_eq!(
            caller(v1(json!({"principalId": "x"}), Value::Null)),
            Caller::Unnamed
        );
    }
}
