//! The asynchronous HTTP path's request status: `POST /images` writes
//! `queued` when it has put the prompt on the queue, the worker writes
//! `failed` (with a reason a user can read) when it gives a prompt up; a
//! stored image is `done` whatever the status object says. The object lives
//! beside the images ([`status_key`]), where the functions may already write.

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

/// The status object's `status` values (the image itself says `done`).
pub const QUEUED: &str = "queued";
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
    }
}
