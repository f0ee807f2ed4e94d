//! What the client, the functions and the provisioner agree on, in one place
//! with no dependencies: what a prompt is, where an image is stored, and the
//! environment variables that configure the functions, and which image models
//! (families) the system speaks.

pub mod model;
pub mod outputs;
pub mod prompt;
pub mod routes;
pub mod status;

/// The environment variables the provisioner sets and the functions read.
pub mod env {
    pub const IMAGE_BUCKET: &str = "IMAGE_BUCKET";
    pub const IMAGE_PREFIX: &str = "IMAGE_PREFIX";
    pub const MODEL_ID: &str = "MODEL_ID";
    pub const MODEL_REGION: &str = "MODEL_REGION";
    /// The prompts queue's ARN: the HTTP function's `POST /images` sends
    /// there (its URL follows from it: [`super::queue_url_of_arn`]; an ARN,
    /// unlike a URL an emulator answers, is the same whoever reads it).
    pub const QUEUE_ARN: &str = "QUEUE_ARN";
    /// The queue's `maxReceiveCount`: the worker's last allowed receive of a
    /// prompt writes its `failed` status.
    pub const MAX_RECEIVE_COUNT: &str = "MAX_RECEIVE_COUNT";
    /// The worker's model calls at once per instance: its share of the
    /// stack's `model.max_in_flight` (unset: 10, adapted to throttles).
    pub const WORKER_CONCURRENCY: &str = "WORKER_CONCURRENCY";
    /// `stated` when the stack states the model's capacity (the worker
    /// runs its `WORKER_CONCURRENCY` from the start); otherwise the worker
    /// finds the capacity from throttles, starting at one call.
    pub const WORKER_PACE: &str = "WORKER_PACE";
    /// The worker's timeout where the runtime gives no real deadline
    /// (`provisioner local`: cargo lambda watch's is fixed in 1970).
    pub const WORKER_TIMEOUT_SECONDS: &str = "WORKER_TIMEOUT_SECONDS";
    /// The dead-letter queue's name: the worker moves the prompts it gives
    /// up there itself, with their reason (its URL: the record's queue's
    /// account and Region, this name). A plain name, so the environment is
    /// known before anything exists (an offline plan shows it).
    pub const DLQ_NAME: &str = "DLQ_NAME";
}

/// What the worker and the provisioner agree on about the prompts queue.
pub mod queues {
    /// The message attribute of a prompt the worker dead-lettered: the
    /// request id it was made under (the id `GET /images/{id}` answers), so
    /// a redriven prompt keeps it.
    pub const REQUEST_ID_ATTRIBUTE: &str = "couch-request-id";
    /// The message attribute with the token the worker wrote in the given-up
    /// request's status (`redrive_token`): only a message carrying it may
    /// name that request id, so no sender can claim another's request.
    pub const REDRIVE_TOKEN_ATTRIBUTE: &str = "couch-redrive-token";
    /// The status object's field holding it (never answered by `GET`).
    pub const REDRIVE_TOKEN: &str = "redrive_token";
    /// The status object's count of failures other than throttling (the
    /// worker's, per request; SQS's receive count also counts throttles).
    pub const FAILURES: &str = "failures";
    /// The message attribute with the reason a prompt was given up.
    pub const REASON_ATTRIBUTE: &str = "couch-reason";
    /// The message attribute with the receives a prompt had when given up.
    pub const RECEIVES_ATTRIBUTE: &str = "couch-receives";
    /// Receives a prompt may spend being throttled, beyond the stack's
    /// `queue.max_receive_count` (which counts other failures): the queue's
    /// redrive `maxReceiveCount` is their sum, a safety net for crashed
    /// invocations only. With the worker's return delays (2 s doubling to
    /// 15 minutes) 50 throttled receives last about ten hours.
    pub const THROTTLED_RECEIVES: u32 = 50;

    /// The queue's redrive `maxReceiveCount` for a stack's `max_receive_count`.
    pub fn safety_net(max_receive_count: u32) -> u32 {
        max_receive_count
            .saturating_add(THROTTLED_RECEIVES)
            .min(1000)
    }
}

/// The CloudWatch metrics the functions emit (Embedded Metric Format in their
/// log lines) and the provisioner's alarms and dashboard read.
pub mod metrics {
    /// The namespace of every metric the functions emit.
    pub const NAMESPACE: &str = "CouchExplorers";
    /// Images stored (count).
    pub const IMAGES_MADE: &str = "ImagesMade";
    /// Failed image attempts (count), also by [`REASON`].
    pub const IMAGES_FAILED: &str = "ImagesFailed";
    /// The model call's duration (milliseconds).
    pub const MODEL_LATENCY: &str = "ModelLatency";
    /// Model (or S3) calls answered with throttling (count): Bedrock's own
    /// `InvocationThrottles`, counted by the caller (the alarm's metric when
    /// the model is in another Region than the stack).
    pub const MODEL_THROTTLES: &str = "ModelThrottles";
    /// Dimension: the emitting function's name (every metric).
    pub const FUNCTION_NAME: &str = "FunctionName";
    /// Dimension of [`IMAGES_FAILED`]: `filtered`, `throttled`, `model`,
    /// `store`, `queue` or `input`.
    pub const REASON: &str = "Reason";
}

/// The pre-traffic health check: the provisioner invokes a new version with
/// `{"couch_health_check": {"by": ...}}` before any traffic moves to it (and
/// `provisioner verify` invokes `live`). Each function answers, without calling
/// the model, `{"ok": bool, "function", "version", "checks": [{"name", "ok",
/// "detail"}]}` after checking its configuration, that it can write under the
/// prefix ([`health_key`]) and that it speaks the model's family.
pub mod health {
    /// The key of a health-check event's payload.
    pub const EVENT_KEY: &str = "couch_health_check";
    /// The answer's verdict field.
    pub const OK: &str = "ok";
    /// The answer's list of checks.
    pub const CHECKS: &str = "checks";
}

/// An SQS queue's URL from its ARN (`arn:aws:sqs:{region}:{account}:{name}`
/// → `https://sqs.{region}.amazonaws.com/{account}/{name}`, `.com.cn` in
/// the China partition); `None` for what is not a queue ARN.
pub fn queue_url_of_arn(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, partition, "sqs", region, account, name] = parts.as_slice() else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    let domain = if *partition == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

/// Where function `function`'s health check writes under `prefix`: in the
/// images folder (the only place the roles may write), in a sub-folder no
/// image id can name ([`image_key`] replaces `/`).
pub fn health_key(prefix: &str, function: &str) -> String {
    format!(
        "{}_health/{}",
        images_prefix(prefix),
        image_file_name(function, "json")
    )
}

/// The folder, under the stack's prefix, that images are written to: the
/// worker writes there, the client waits there, the roles may write only there.
pub fn images_prefix(prefix: &str) -> String {
    format!("{}/images/", prefix.trim_matches('/'))
}

/// The key of image `id` under `prefix`. Characters outside `[A-Za-z0-9_-]`
/// in the id are replaced, so a key never escapes the prefix.
pub fn image_key(prefix: &str, id: &str) -> String {
    format!("{}{}", images_prefix(prefix), image_file_name(id, "png"))
}

/// The folder of the synchronous route's pictures (`POST /image_generator`):
/// `{prefix}/images/sync/`. Apart from the asynchronous path's pictures,
/// which [`image_key`] names by SQS message id directly under the images
/// folder: no message id can name this sub-folder ([`image_key`] replaces
/// `/`), so the two paths' ids never meet.
pub fn sync_images_prefix(prefix: &str) -> String {
    format!("{}sync/", images_prefix(prefix))
}

/// The key of the synchronous route's picture `id` (a fresh UUID per
/// picture): `{prefix}/images/sync/{id}.png`, characters outside
/// `[A-Za-z0-9_-]` replaced as in [`image_key`].
pub fn sync_image_key(prefix: &str, id: &str) -> String {
    format!(
        "{}{}",
        sync_images_prefix(prefix),
        image_file_name(id, "png")
    )
}

/// `{id}.{extension}` with characters outside `[A-Za-z0-9_-]` in the id replaced.
fn image_file_name(id: &str, extension: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_follows_from_its_arn() {
        assert_eq!(
            queue_url_of_arn("arn:aws:sqs:eu-west-1:123456789012:couch-prod-prompts").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/couch-prod-prompts")
        );
        assert_eq!(
            queue_url_of_arn("arn:aws-cn:sqs:cn-north-1:1:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/1/q")
        );
        assert_eq!(queue_url_of_arn("arn:aws:sns:eu-west-1:1:t"), None);
        assert_eq!(
            queue_url_of_arn("https://sqs.eu-west-1.amazonaws.com/1/q"),
            None
        );
    }

    #[test]
    fn image_keys_stay_under_the_prefix() {
        assert_eq!(images_prefix("/11/"), "11/images/");
        assert_eq!(image_key("11", "ab-12"), "11/images/ab-12.png");
        assert_eq!(image_key("11", "../x"), "11/images/___x.png");
        assert_eq!(
            health_key("/11/", "s-worker"),
            "11/images/_health/s-worker.json"
        );
        assert_eq!(health_key("11", "a/b"), "11/images/_health/a_b.json");
    }

    #[test]
    fn the_synchronous_routes_pictures_have_a_folder_no_message_id_can_name() {
        let id = "6a96454d-ef25-4788-a79c-98f9157180bb";
        assert_eq!(sync_images_prefix("/11/"), "11/images/sync/");
        assert_eq!(sync_image_key("11", id), format!("11/images/sync/{id}.png"));
        assert_eq!(sync_image_key("11", "../x"), "11/images/sync/___x.png");
        // The asynchronous path's key of the same id, or of one that tries
        // to reach the folder, stays outside it.
        assert_eq!(image_key("11", id), format!("11/images/{id}.png"));
        assert_eq!(
            image_key("11", &format!("sync/{id}")),
            format!("11/images/sync_{id}.png")
        );
        assert!(!image_key("11", "sync/x").starts_with(&sync_images_prefix("11")));
    }
}
