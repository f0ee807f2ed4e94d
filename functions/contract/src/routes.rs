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

/// Every route the HTTP API has.
pub const ALL: [Route; 3] = [SYNC, SUBMIT, STATUS];

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
}
