//! The HTTP function: `POST /image_generator {"prompt": ...}` behind API
//! Gateway (HTTP API payload 2.0, REST payload 1.0). Thin: parse the event,
//! call [`imagegen::Generator`], shape the answer.

pub mod event;
pub mod handler;
pub mod images;
pub mod page;
pub mod reply;

pub use handler::{handle, respond, route};
pub use reply::Reply;

#[cfg(test)]
mod answers {
    use std::collections::BTreeSet;

    use couch_contract::routes;

    /// The statuses the function's code answers with: the literal first
    /// argument of every `error(...)` and `Reply::json(...)` outside tests.
    fn answered() -> BTreeSet<u16> {
        let mut found = BTreeSet::new();
        for file in ["handler.rs", "images.rs", "reply.rs"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src")
                .join(file);
            let text = std::fs::read_to_string(path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for call in ["error(", "Reply::json("] {
                for (at, _) in code.match_indices(call) {
                    let digits: String = code[at + call.len()..]
                        .trim_start()
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if let Ok(status) = digits.parse() {
                        found.insert(status);
                    }
                }
            }
        }
        found
    }

    /// The OpenAPI document (`provisioner openapi`) is made from the
    /// contract's answers: every status the function gives must be in them.
    #[test]
    fn every_status_the_function_answers_is_in_the_contract() {
        let listed: BTreeSet<u16> = routes::ALL
            .iter()
            .flat_map(|r| r.answers())
            .map(|a| a.status)
            .collect();
        let answered = answered();
        assert!(answered.len() >= 8, "{answered:?}");
        let missing: Vec<&u16> = answered.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "answered but not in couch_contract::routes: {missing:?}"
        );
    }
}
