//! The HTTP API's routes: what the provisioner declares (API Gateway routes
//! and their invoke permissions), what `provisioner local` serves, what the
//! HTTP function answers and what the client calls. A route misspelt in one
//! of them is a compile error, not a 404.

/// One route: a method and a path (`{id}`: a path parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl Route {
    /// API Gateway's route key (`POST /images`).
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether API Gateway lets anyone call it ([`PAGE`] only): it costs no
    /// model call and reads nothing, so the stack's authorization is not
    /// asked for it.
    pub fn is_public(&self) -> bool {
        *self == PAGE
    }
}

/// `POST /image_generator {"prompt": ...}`: the picture, synchronously.
pub const SYNC: Route = Route {
    method: "POST",
    path: "/image_generator",
};

/// `POST /images {"prompt": ...}`: queued; 202 and the status's `Location`.
pub const SUBMIT: Route = Route {
    method: "POST",
    path: "/images",
};

/// `GET /images/{id}`: a submitted request's status (and picture link).
pub const STATUS: Route = Route {
    method: "GET",
    path: "/images/{id}",
};

/// `GET /`: one small page to try the asynchronous path in a browser. The
/// only public route: a browser loads it before it holds any credential, so
/// API Gateway authorizes nobody for it (`NONE`), whatever the stack's
/// `http.auth`; the page then calls the other routes with the stack's auth.
pub const PAGE: Route = Route {
    method: "GET",
    path: "/",
};

/// Every route the HTTP API has.
pub const ALL: [Route; 4] = [SYNC, SUBMIT, STATUS, PAGE];

/// An answer of a route: its HTTP status and when it is given. Every body
/// is JSON but the page's (HTML); an error's is `{"error": ..., "request_id": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub when: &'static str,
}

const fn answer(status: u16, when: &'static str) -> Answer {
    Answer { status, when }
}

/// Answers every route may give: a request the function cannot read, a
/// method the route does not take, a throttled request (API Gateway's stage
/// throttle answers 429 before the function runs).
const COMMON: [Answer; 3] = [
    answer(
        400,
        "The request is not one the route takes (the body, the content type, the id).",
    ),
    answer(405, "The route takes another method."),
    answer(
        429,
        "Throttled: by the API's stage throttle, or (POST /image_generator) the model is busy; `Retry-After` says when to try again.",
    ),
];

impl Route {
    /// What the HTTP function answers on this route (besides [`COMMON`]'s).
    pub fn answers(&self) -> Vec<Answer> {
        let own: &[Answer] = match self.path {
            "/image_generator" => &[
                answer(
                    201,
                    "The picture was made and stored: where it is, and a link to it valid for an hour.",
                ),
                answer(
                    422,
                    "The model's content filter refused the prompt; rephrase it.",
                ),
                answer(502, "The picture could not be made or stored; try again."),
            ],
            "/images" => &[
                answer(
                    202,
                    "The prompt is queued: its id, and where to ask for its status (also in `Location`).",
                ),
                answer(
                    403,
                    "An authorizer ran but named no caller to own the request.",
                ),
                answer(502, "The prompt could not be queued; try again."),
            ],
            "/images/{id}" => &[
                answer(
                    200,
                    "The request's status: queued, failed (with the reason) or done (with the picture's link).",
                ),
                answer(404, "No request has this id, or it is someone else's."),
                answer(502, "The status could not be read; try again."),
            ],
            "/" => &[answer(
                200,
                "The page (HTML): a prompt box, the request's state as it changes, and the picture.",
            )],
            _ => &[],
        };
        // The page reads no body and takes one method: only the stage throttle.
        let common = if self.is_public() {
            &COMMON[2..]
        } else {
            &COMMON[..]
        };
        let mut all: Vec<Answer> = own.iter().chain(common).copied().collect();
        all.sort_by_key(|a| a.status);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_route_is_under_the_submit_route() {
        assert!(STATUS.path.starts_with(&format!("{}/", SUBMIT.path)));
        assert_eq!(SUBMIT.key(), "POST /images");
        let keys: std::collections::BTreeSet<String> = ALL.iter().map(Route::key).collect();
        assert_eq!(keys.len(), ALL.len());
    }

    #[test]
    fn only_the_page_is_public() {
        let public: Vec<Route> = ALL.into_iter().filter(Route::is_public).collect();
        assert_eq!(public, [PAGE]);
        assert_eq!(PAGE.key(), "GET /");
    }

    #[test]
    fn every_route_has_one_success_and_its_errors() {
        for route in ALL {
            let answers = route.answers();
            let ok: Vec<u16> = answers
                .iter()
                .map(|a| a.status)
                .filter(|s| *s < 300)
                .collect();
            assert_eq!(ok.len(), 1, "{route:?}: {answers:?}");
            assert!(
                route.is_public() || answers.iter().any(|a| a.status == 400),
                "{route:?}"
            );
            assert!(answers.iter().any(|a| a.status == 429), "{route:?}");
            assert!(answers.iter().all(|a| !a.when.is_empty()));
        }
    }
}
