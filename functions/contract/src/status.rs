//! The asynchronous HTTP path's request status: `POST /images` writes
//! `queued` when it has put the prompt on the queue, the worker writes
//! `failed` (with a reason a user can read) when it gives a prompt up; a
//! stored image is `done` whatever the status object says. The object lives
//! beside the images ([`status_key`]), where the functions may already write.
//! A queued request is `generating` once the worker has started its model
//! call: the worker writes an empty mark ([`generating_key`]) beside the
//! status, never the status object itself (no read-modify-write race with
//! the submit or a failure, and nothing about the owner to keep).
//!
//! When the stack's API has an authorizer (`http.auth: iam|jwt`) the status
//! object also names the request's [`Owner`] (field [`OWNER`]): `GET
//! /images/{id}` answers only them. Without one (`http.auth: none`) there
//! is no owner and whoever has the id reads the status, as before.

/// The id `POST /images` answers and the worker names the image by: the SQS
/// message id, a UUID (`8-4-4-4-12` lowercase hex digits, as SQS makes them).
pub fn is_request_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Where request `id`'s status is kept: `{prefix}/images/_status/{id}.json`,
/// a folder no image id can name (ids cannot hold `/`).
pub fn status_key(prefix: &str, id: &str) -> String {
    format!(
        "{}_status/{}",
        super::images_prefix(prefix),
        super::image_file_name(id, "json")
    )
}

/// The worker's mark that request `id`'s model call has started:
/// `{prefix}/images/_status/{id}.generating.json` (an empty JSON object).
pub fn generating_key(prefix: &str, id: &str) -> String {
    format!(
        "{}_status/{}",
        super::images_prefix(prefix),
        super::image_file_name(id, "generating.json")
    )
}

/// The status object's field naming the request's [`Owner`] (as
/// [`Owner::encode`] writes it); absent when the API has no authorizer.
pub const OWNER: &str = "owner";

/// Whom a request belongs to: the caller API Gateway's authorizer named when
/// the request was submitted (never something the caller wrote itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A JWT authorizer's verified token: its `sub` claim.
    Jwt(String),
    /// IAM (SigV4) authorization: the caller's ARN.
    Iam(String),
}

impl Owner {
    /// As the status object holds it: `jwt:{sub}` or `iam:{arn}`. The kind
    /// comes first, so a token's `sub` that reads like an ARN is no IAM caller.
    pub fn encode(&self) -> String {
        match self {
            Owner::Jwt(sub) => format!("jwt:{sub}"),
            Owner::Iam(arn) => format!("iam:{arn}"),
        }
    }

    /// What [`Owner::encode`] wrote; `None` for anything else (an empty
    /// identity included).
    pub fn decode(field: &str) -> Option<Owner> {
        let (kind, who) = field.split_once(':')?;
        if who.is_empty() {
            return None;
        }
        match kind {
            "jwt" => Some(Owner::Jwt(who.to_owned())),
            "iam" => Some(Owner::Iam(who.to_owned())),
            _ => None,
        }
    }
}

/// The status object's `status` values (the image itself says `done`).
pub const QUEUED: &str = "queued";
/// Answered, never written in the status object: queued, with the worker's
/// [`generating_key`] mark.
pub const GENERATING: &str = "generating";
pub const FAILED: &str = "failed";
pub const DONE: &str = "done";

/// What a user reads when the model's content filter refused the prompt.
pub const REASON_FILTERED: &str =
    "the image model's content filter refused this prompt; rephrase it and submit it again";
/// What a user reads for any other failure: nothing of ours leaks.
pub const REASON_OURS: &str =
    "the image could not be generated (a failure on our side); submit the prompt again later";
/// A prompt the model cannot take (too long for it, empty).
pub const REASON_PROMPT: &str = "the prompt cannot be turned into an image: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sqs_message_ids_and_status_sits_beside_the_images() {
        assert!(is_request_id("6a96454d-ef25-4788-a79c-98f9157180bb"));
        for bad in [
            "",
            "x",
            "6a96454d-ef25-4788-a79c-98f9157180b",
            "../../etc/passwd",
            "6a96454d_ef25_4788_a79c_98f9157180bb",
            "6a96454d-ef25-4788-a79c-98f9157180bg",
        ] {
            assert!(!is_request_id(bad), "{bad}");
        }
        assert_eq!(
            status_key("11", "6a96454d-ef25-4788-a79c-98f9157180bb"),
            "11/images/_status/6a96454d-ef25-4788-a79c-98f9157180bb.json"
        );
        assert_eq!(status_key("11", "a/b"), "11/images/_status/a_b.json");
        assert_eq!(
            generating_key("11", "6a96454d-ef25-4788-a79c-98f9157180bb"),
            "11/images/_status/6a96454d-ef25-4788-a79c-98f9157180bb.generating.json"
        );
        assert_ne!(generating_key("11", "x"), status_key("11", "x"));
    }

    #[test]
    fn owners_round_trip_and_their_kind_is_part_of_them() {
        let arn = "arn:aws:iam::123456789012:user/ana";
        for owner in [
            Owner::Jwt("auth0|5fe435b5".into()),
            Owner::Iam(arn.into()),
            // A token whose `sub` reads like an ARN stays a token's.
            Owner::Jwt(arn.into()),
        ] {
            assert_eq!(Owner::decode(&owner.encode()), Some(owner));
        }
        assert_eq!(Owner::Iam(arn.into()).encode(), format!("iam:{arn}"));
        assert_ne!(
            Owner::Jwt(arn.into()).encode(),
            Owner::Iam(arn.into()).encode()
        );
        for bad in ["", "jwt:", "iam:", "ana", "x:ana", ":ana"] {
            assert_eq!(Owner::decode(bad), None, "{bad}");
        }
    }
}
