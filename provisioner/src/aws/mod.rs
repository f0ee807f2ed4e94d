//! The AWS side: one module per resource kind, each implementing
//! [`crate::engine::Resource`] with the real SDK clients.

pub mod alarms;
pub mod aliases;
pub mod buckets;
pub mod calls;
pub mod clients;
pub mod concurrency;
pub mod dashboards;
pub mod functions;
pub mod health;
pub mod http_apis;
pub mod log_groups;
pub mod managed_policies;
pub mod models;
pub mod permissions;
pub mod policies;
pub mod queues;
pub mod roles;
pub mod subscriptions;
pub mod tags;
pub mod topics;
pub mod triggers;

pub use clients::Aws;

/// Attribute names kinds export (each kind's `impl Handle<Kind>` says which).
pub(crate) use crate::kind::{ARN, ID, NAME, URL};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::engine::{ErrorKind, ResourceError};

/// The AWS error code of a failed call, if the service answered.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// What a kind predicts for a resource not created yet: what the declaration
/// knows, plus the ARN AWS will derive.
pub fn with_arn(declared: &crate::engine::Declared, arn: String) -> crate::engine::Attrs {
    let mut attrs = declared.known.clone();
    attrs.insert(ARN.into(), arn);
    attrs
}

/// The result of a delete call: the AWS error code `gone` (e.g.
/// `ResourceNotFoundException`) means it is deleted already.
pub fn deleted<O, E, R>(
    result: Result<O, SdkError<E, R>>,
    gone: &str,
    what: &str,
) -> Result<crate::engine::DeleteOutcome, ResourceError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(crate::engine::DeleteOutcome::Deleted),
        Err(e) if error_code(&e) == Some(gone) => Ok(crate::engine::DeleteOutcome::Deleted),
        Err(e) => Err(aws_error(what, e)),
    }
}

/// A call whose answer is not needed: `Ok(())`, or the error rendered by
/// [`aws_error`] with what was attempted.
pub trait Done {
    fn done(self, what: &str) -> Result<(), ResourceError>;
}

impl<O, E, R> Done for Result<O, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn done(self, what: &str) -> Result<(), ResourceError> {
        self.map(|_| ()).map_err(|e| aws_error(what, e))
    }
}

/// A create that AWS answered "already exists": the SDK's own retry of a
/// create whose first answer was lost (the name or statement id is ours, so
/// it is what that attempt made), converged on; the next plan compares it.
/// Any other error stays an error.
pub fn made_already(e: ResourceError) -> Result<(), ResourceError> {
    exists_already(e).map(|_| ())
}

/// `Ok(true)` for a create AWS answered "already exists" (`classify` makes
/// it `Invalid`, never a conflict to wait out): the caller converges on what
/// exists (made by an interrupted run, or by a lost attempt of this one).
pub fn exists_already(e: ResourceError) -> Result<bool, ResourceError> {
    let code = e.code.as_deref().unwrap_or_default();
    let named = code.ends_with("AlreadyExists") || code.ends_with("AlreadyExistsException");
    if e.kind == ErrorKind::Invalid
        && (named || e.message.to_ascii_lowercase().contains("already exist"))
    {
        tracing::info!("{}: converging on it", e.message);
        Ok(true)
    } else {
        Err(e)
    }
}

/// Creates a named resource under the engine's policy; when AWS answers
/// that it exists already (made by an interrupted run, or by a lost attempt
/// of this one), brings every declared field of what exists to `desired`
/// instead. `Ok(true)`: this call created it.
pub async fn create_or_converge<F, Fut>(
    r: &dyn crate::engine::Resource,
    desired: &crate::engine::Fields,
    create: F,
) -> Result<bool, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ResourceError>>,
{
    match crate::engine::retry::call(create).await {
        Ok(()) => Ok(true),
        Err(e) => {
            exists_already(e)?;
            crate::engine::typed::converge_existing(r, desired).await?;
            Ok(false)
        }
    }
}

/// An error from reading a part of a resource that exists (its policy
/// version, its tags): never [`ErrorKind::NotFound`], which the engine
/// reads as the whole resource being absent.
pub fn part_of_existing(mut e: ResourceError) -> ResourceError {
    if e.kind == ErrorKind::NotFound {
        e.kind = ErrorKind::Other;
        e.message.push_str(" (the resource exists; read again)");
    }
    e
}

/// A delete or detach of a part AWS answered "not found": already done.
pub fn gone_already(result: Result<(), ResourceError>) -> Result<(), ResourceError> {
    match result {
        Err(e) if e.kind != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A resource read back right after its creation; absent means AWS lost it.
pub fn read_back(
    live: Option<crate::engine::Live>,
    what: &str,
) -> Result<crate::engine::Live, ResourceError> {
    live.ok_or_else(|| ResourceError::new(format!("{what} was created but cannot be read back")))
}

/// An error and its sources as one line (`a: b: c`), without repeats.
pub fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Renders a failed call for a person: what was attempted, AWS's code and message,
/// or the transport problem (e.g. connection refused) with its causes; and
/// classifies it ([`classify`]) for the engine's retry policy.
pub fn aws_error<E, R>(what: &str, err: SdkError<E, R>) -> ResourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("UnknownError");
            let msg = e.err().message().unwrap_or("(no message)");
            let status = status_of(e.raw());
            if let Some(region) = redirected_to(e.raw()) {
                return ResourceError::answered(
                    format!(
                        "{what}: the bucket is in {region}, and S3 answers requests signed for another Region with 301 PermanentRedirect (the SDK does not follow it): use a bucket in the stack's Region"
                    ),
                    ErrorKind::Invalid,
                    Some("PermanentRedirect"),
                );
            }
            ResourceError::answered(
                format!("{what}: {code}: {msg}"),
                classify(status, code, msg),
                Some(code),
            )
        }
        _ => ResourceError::new(format!("{what}: {}", causes(&err))),
    }
}

/// The HTTP status of a raw answer (the SDKs' `R`), when it is one.
fn status_of<R: std::fmt::Debug + 'static>(raw: &R) -> u16 {
    (raw as &dyn std::any::Any)
        .downcast_ref::<aws_smithy_runtime_api::http::Response>()
        .map_or(0, |r| r.status().as_u16())
}

/// The Region S3 redirects to (a 301 with `x-amz-bucket-region`: S3 API
/// reference, HeadBucket), when the answer is one.
fn redirected_to<R: std::fmt::Debug + 'static>(raw: &R) -> Option<String> {
    let raw =
        (raw as &dyn std::any::Any).downcast_ref::<aws_smithy_runtime_api::http::Response>()?;
    if raw.status().as_u16() != 301 {
        return None;
    }
    raw.headers().get("x-amz-bucket-region").map(str::to_owned)
}

/// What kind of failure AWS's answer is, from its status, code and message.
/// The codes are each service's documented errors: API Gateway's
/// `ConflictException` ("concurrent modification", apigatewayv2 API
/// reference, Common errors), Lambda's `ResourceConflictException` ("another
/// operation is in progress") and `ResourceInUseException` ("an event source
/// mapping in the CREATING state", Lambda API reference), IAM's
/// `ConcurrentModification`, S3's `OperationAborted`, SQS's
/// `QueueDeletedRecently` ("wait 60 seconds after deleting a queue",
/// `CreateQueue`), and Lambda's `InvalidParameterValueException` for a role
/// it cannot use yet (Lambda developer guide, execution role: "it can take
/// a few seconds for IAM changes to propagate").
pub fn classify(status: u16, code: &str, message: &str) -> ErrorKind {
    let code = code
        .trim_start_matches("AWS.SimpleQueueService.")
        .rsplit('#')
        .next()
        .unwrap_or(code);
    let lower = message.to_ascii_lowercase();
    // A create whose name is taken: the kind converges on it; waiting never helps.
    let exists = lower.contains("already exist")
        || code.ends_with("AlreadyExists")
        || code.ends_with("AlreadyExistsException");
    match code {
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "RequestThrottled" => ErrorKind::Throttled,
        "ConflictException"
        | "ResourceConflictException"
        | "ResourceInUseException"
        | "ConcurrentModification"
        | "ConcurrentModificationException"
        | "OperationAborted"
        | "OperationAbortedException"
        | "QueueDeletedRecently"
        | "TooManyUpdates"
        | "ConcurrentAccess"
        | "ConcurrentAccessException"
        | "DeleteConflict"
            if !exists =>
        {
            ErrorKind::Conflict
        }
        "InvalidParameterValueException"
            if lower.contains("cannot be assumed")
                || lower.contains("execution role does not have permissions") =>
        {
            ErrorKind::Propagating
        }
        "ResourceNotFoundException"
        | "NotFoundException"
        | "NoSuchEntity"
        | "NoSuchBucket"
        | "NoSuchKey"
        | "NonExistentQueue"
        | "QueueDoesNotExist"
        | "NotFound"
        | "ResourceNotFound" => ErrorKind::NotFound,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthorizationError"
        | "ExpiredToken"
        | "InvalidClientTokenId" => ErrorKind::Denied,
        _ if status == 429 => ErrorKind::Throttled,
        _ if status == 404 => ErrorKind::NotFound,
        _ if status == 403 => ErrorKind::Denied,
        _ if (400..500).contains(&status) => ErrorKind::Invalid,
        _ if exists => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

/// Whether a failed call may have been carried out anyway: its answer was
/// lost (connection dropped, timeout, unreadable answer) or the service
/// failed (5xx) after receiving it. Throttling and other 4xx mean it was not.
pub fn maybe_done<E>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> bool {
    match err {
        SdkError::ServiceError(e) => e.raw().status().as_u16() >= 500,
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

/// Whether the service asked to slow down (nothing was done).
pub fn throttled<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    match err {
        SdkError::ServiceError(e) => {
            e.raw().status().as_u16() == 429
                || e.err().code().is_some_and(|c| {
                    matches!(
                        c,
                        "Throttling"
                            | "ThrottlingException"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                            | "SlowDown"
                    )
                })
        }
        _ => false,
    }
}

/// What [`create_once`] ended with.
pub enum Created<O, T> {
    /// The create call answered.
    New(O),
    /// An answer was lost, and `find` found what that call had created.
    Found(T),
}

/// A create AWS does not deduplicate (no client token: a repeated call makes
/// a second event source mapping, HTTP API or integration). `create` must turn
/// the SDK's own retries off for the call. Each attempt goes through the
/// engine's policy (`engine::retry::call`): throttling, conflicts and
/// propagation are waited out; an attempt that may have been carried out
/// (see [`maybe_done`]) is `ErrorKind::Lost`, and once any attempt was, every
/// later attempt (whatever ended the one before) first looks for its result
/// with `find`, so a lost answer never becomes a duplicate.
pub async fn create_once<O, E, T, C, CF, F, FF>(
    what: &str,
    create: C,
    find: F,
) -> Result<Created<O, T>, ResourceError>
where
    C: Fn() -> CF,
    CF: std::future::Future<Output = Result<O, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
    F: Fn() -> FF,
    FF: std::future::Future<Output = Result<Option<T>, ResourceError>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    let lost = AtomicU32::new(0);
    crate::engine::retry::call(|| {
        let (lost, create, find) = (&lost, &create, &find);
        async move {
            if lost.load(SeqCst) > 0
                && let Some(found) = find().await?
            {
                tracing::info!("{what}: the answer was lost, but the call had been carried out");
                return Ok(Created::Found(found));
            }
            match create().await {
                Ok(o) => Ok(Created::New(o)),
                Err(e) => {
                    let ambiguous = maybe_done(&e);
                    let mut err = aws_error(what, e);
                    if ambiguous && lost.fetch_add(1, SeqCst) + 1 < clients::MAX_ATTEMPTS {
                        err.kind = ErrorKind::Lost;
                    }
                    Err(err)
                }
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn answers_are_classified_by_their_documented_codes() {
        use super::classify;
        use crate::engine::ErrorKind::*;
        let cases = [
            (
                409,
                "ConflictException",
                "Unable to complete operation due to concurrent modification. Please try again later.",
                Conflict,
            ),
            (
                409,
                "ResourceConflictException",
                "The operation cannot be performed at this time. An update is in progress for resource",
                Conflict,
            ),
            (
                409,
                "ResourceConflictException",
                "Function already exist: f",
                Invalid,
            ),
            (
                409,
                "ResourceConflictException",
                "The statement id (s) provided already exists.",
                Invalid,
            ),
            (
                400,
                "ResourceInUseException",
                "Cannot update the event source mapping because it is in use.",
                Conflict,
            ),
            (
                400,
                "AWS.SimpleQueueService.QueueDeletedRecently",
                "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
                Conflict,
            ),
            (
                400,
                "com.amazonaws.sqs#QueueDeletedRecently",
                "wait 60 seconds",
                Conflict,
            ),
            (
                400,
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
                Propagating,
            ),
            (
                400,
                "InvalidParameterValueException",
                "The provided execution role does not have permissions to call ReceiveMessage on SQS",
                Propagating,
            ),
            (
                400,
                "InvalidParameterValueException",
                "Unsupported runtime",
                Invalid,
            ),
            (429, "TooManyRequestsException", "Rate exceeded", Throttled),
            (400, "Throttling", "Rate exceeded", Throttled),
            (
                404,
                "NotFoundException",
                "Invalid API identifier specified",
                NotFound,
            ),
            (
                404,
                "NoSuchEntity",
                "The role with name r cannot be found.",
                NotFound,
            ),
            (403, "AccessDeniedException", "not authorized", Denied),
            (400, "BadRequestException", "Invalid route key", Invalid),
            (500, "ServiceException", "internal", Other),
        ];
        for (status, code, message, kind) in cases {
            assert_eq!(classify(status, code, message), kind, "{code}: {message}");
        }
    }

    #[test]
    fn causes_are_joined_once_each() {
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(causes(&e), "outer: connection refused");
    }
}
