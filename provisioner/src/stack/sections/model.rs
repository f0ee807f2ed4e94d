//! `model:` — the Bedrock model both functions call: its id (a family the
//! functions speak), Region, an inference profile's routes, and its capacity
//! as the account states it.

use super::{Converting, Section};
use super::{is_region, range};
use crate::stack::{Model, Stack};

/// As written in the file: the section's typed form itself.
pub type Raw = Model;

/// The section's defaults.
impl Default for Model {
    fn default() -> Self {
        Model {
            id: crate::stack::DEFAULT_MODEL_ID.into(),
            region: crate::stack::DEFAULT_MODEL_REGION.into(),
            routes_to: Vec::new(),
            max_in_flight: None,
            images_per_minute: None,
            seconds_per_image: crate::stack::capacity::DEFAULT_SECONDS_PER_IMAGE,
        }
    }
}

/// Read as written: the typed section is its own raw form.
impl Section for Model {
    type Typed = Model;
    fn placeholder() -> Model {
        Model::default()
    }
    fn typed(self, _: &mut Converting<'_>) -> Model {
        self
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    if !is_region(&s.model.region) {
        out.push((
            "model.region".into(),
            format!(
                "{:?} is not an AWS region name (e.g. us-east-1)",
                s.model.region
            ),
        ));
    }
    if s.model.id.trim().is_empty() || s.model.id.contains(char::is_whitespace) {
        out.push((
            "model.id".into(),
            format!("{:?} is not a Bedrock model id", s.model.id),
        ));
    } else if couch_contract::model::family_of(&s.model.id).is_none() {
        out.push((
            "model.id".into(),
            format!(
                "{:?} is of no model family the functions speak; known: {} (`provisioner models` lists the image models)",
                s.model.id,
                couch_contract::model::KNOWN_PREFIXES
            ),
        ));
    }
    let profile = couch_contract::model::is_inference_profile(&s.model.id);
    if profile && s.model.routes_to.is_empty() {
        out.push((
            "model.id".into(),
            format!(
                "{:?} is a cross-Region inference profile: declare model.routes_to, the Regions it routes to (the model card lists them; `plan` checks them), so the functions may invoke the model there",
                s.model.id
            ),
        ));
    }
    if !profile && !s.model.routes_to.is_empty() {
        out.push((
            "model.routes_to".into(),
            format!(
                "only an inference profile id (us./eu./apac./global.) routes to other Regions; {:?} is called in model.region only",
                s.model.id
            ),
        ));
    }
    for r in &s.model.routes_to {
        if !is_region(r) {
            out.push((
                "model.routes_to".into(),
                format!("{r:?} is not an AWS region name (e.g. us-east-1)"),
            ));
        }
    }
    capacity(&s.model, out);
}

/// The capacity it is sized by: its quotas and a call's duration.
fn capacity(m: &Model, out: &mut Vec<(String, String)>) {
    if let Some(n) = m.max_in_flight {
        range(
            out,
            "model.max_in_flight",
            n,
            2,
            100_000,
            "the model calls the account allows at once (2 or more: the worker alone runs 2)",
        );
    }
    if let Some(n) = m.images_per_minute {
        range(
            out,
            "model.images_per_minute",
            n,
            1,
            1_000_000,
            "a requests-per-minute quota",
        );
    }
    if !(m.seconds_per_image.is_finite()
        && m.seconds_per_image > 0.0
        && m.seconds_per_image <= 900.0)
    {
        out.push((
            "model.seconds_per_image".into(),
            format!(
                "{} is out of range: a model call's duration in seconds must be above 0 and at most 900",
                m.seconds_per_image
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::parse;
    use crate::stack::validate::tests::*;
    use std::path::Path;

    #[test]
    fn a_model_of_no_known_family_is_refused_at_its_line() {
        let p = one_problem(
            "model:",
            "model:  { id: anthropic.claude-3-haiku-20240307-v1:0, region: us-west-2 }",
            "model.id",
            "no model family",
        );
        assert!(p.message.contains("stability.*"), "{p}");
        // A known family at end-of-life is valid here: `plan` asks Bedrock.
        parse(
            Path::new("x.yaml"),
            &GOOD.replace(
                "stability.stable-image-core-v1:1, region: us-west-2",
                "amazon.titan-image-generator-v1, region: us-east-1",
            ),
        )
        .unwrap();
    }

    #[test]
    fn inference_profiles_declare_where_they_route() {
        one_problem(
            "model:",
            "model:  { id: us.stability.stable-image-core-v1:1, region: us-west-2 }",
            "model.id",
            "model.routes_to",
        );
        one_problem(
            "model:",
            "model:  { id: stability.stable-image-core-v1:1, region: us-west-2, routes_to: [us-east-1] }",
            "model.routes_to",
            "only an inference profile",
        );
        one_problem(
            "model:",
            "model:  { id: us.stability.stable-image-core-v1:1, region: us-west-2, routes_to: [oregon] }",
            "model.routes_to",
            "not an AWS region",
        );
        let s = parse(
            Path::new("x.yaml"),
            &GOOD.replace(
                "stability.stable-image-core-v1:1, region: us-west-2",
                "us.stability.stable-image-core-v1:1, region: us-west-2, routes_to: [us-east-1, us-west-2]",
            ),
        )
        .unwrap();
        assert_eq!(s.model.routes_to, ["us-east-1", "us-west-2"]);
    }

    #[test]
    fn bad_model_region() {
        one_problem(
            "model:",
            "model:  { region: virginia }",
            "model.region",
            "not an AWS region",
        );
    }
}
