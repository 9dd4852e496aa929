//! The systems the model checker explores.
//!
//! Each model lives in one file: the spec or system it follows (cited), its
//! parameters, its properties, its symmetry, its variants, and tests that pin its
//! state counts and assert each variant's counterexample. [`registry`] lists them
//! all; `haft check` and the tests reach every model through it.

pub mod bank;
pub mod browse;
pub mod cluster;
pub mod commit_spec;
pub mod harness;
pub mod heartbeat;
pub mod host;
pub mod network;
pub mod node;
pub mod params;
pub mod refinement;
pub mod ring_handoff;
pub mod shared;
pub mod system_state;
pub mod two_phase;
pub mod two_phase_spec;

#[cfg(test)]
pub(crate) mod testing;

use crate::checker::Spec;

pub use browse::{BadPath, Browse, Browser, Judged, Walk};
pub use harness::{
    CheckOptions, CheckReport, Phase, Progress, PropertyReport, SimulationReport, Step, Strategy,
};
pub use params::{ParamError, ParamKind, ParamSpec, ParamValue, Params};

/// A model `haft check` knows by name.
pub struct ModelEntry {
    /// The name used on the command line.
    pub name: &'static str,
    /// One line saying what the model is.
    pub summary: &'static str,
    /// Its parameters, with defaults and allowed values.
    pub params: &'static [ParamSpec],
    /// Whether `--symmetry` is supported.
    pub symmetry: bool,
    check: fn(&Params, &CheckOptions) -> Result<CheckReport, ModelError>,
    browse: fn(&Params) -> Result<Box<dyn Browse>, ModelError>,
}

impl ModelEntry {
    /// Parses `key=value` pairs against this model's parameters.
    pub fn params<S: AsRef<str>>(&self, pairs: &[S]) -> Result<Params, ModelError> {
        Ok(Params::parse(self.name, self.params, pairs)?)
    }

    /// The model at its default size.
    pub fn default_params(&self) -> Params {
        Params::defaults(self.name, self.params)
    }

    /// Checks the model exhaustively.
    pub fn check(
        &self,
        params: &Params,
        options: &CheckOptions,
    ) -> Result<CheckReport, ModelError> {
        if options.symmetry && !self.symmetry {
            return Err(ModelError::NoSymmetry { model: self.name });
        }
        (self.check)(params, options)
    }

    /// The model at `params`, to browse step by step (`haft explore`), with
    /// what `haft check` checks on it.
    pub fn browse(&self, params: &Params) -> Result<Box<dyn Browse>, ModelError> {
        (self.browse)(params)
    }
}

/// Why a model could not be checked or explored.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No model has that name.
    #[error("there is no model `{name}`; the models are: {known}")]
    UnknownModel {
        /// The name given.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// A parameter was refused.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The model has no symmetry reduction.
    #[error("model `{model}` has no symmetry reduction; run it without --symmetry")]
    NoSymmetry {
        /// The model.
        model: &'static str,
    },
}

/// Every model, in the order `haft check` runs them.
pub fn registry() -> &'static [ModelEntry] {
    REGISTRY
}

/// Finds a model by name.
pub fn find(name: &str) -> Result<&'static ModelEntry, ModelError> {
    registry()
        .iter()
        .find(|entry| entry.name == name)
        .ok_or_else(|| ModelError::UnknownModel {
            name: name.to_string(),
            known: registry()
                .iter()
                .map(|entry| entry.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

static REGISTRY: &[ModelEntry] = &[
    ModelEntry {
        name: commit_spec::NAME,
        summary: "Lamport's TCommit: the specification of transaction commit",
        params: commit_spec::PARAMS,
        symmetry: true,
        check: |params, options| {
            let model = commit_spec::TCommit::from_params(params)?;
            let representative = commit_spec::representative;
            Ok(harness::run(
                commit_spec::NAME,
                params.clone(),
                model,
                Some(representative),
                options,
            ))
        },
        browse: |params| browser(commit_spec::TCommit::from_params(params)?, Spec::of),
    },
    ModelEntry {
        name: two_phase_spec::NAME,
        summary: "Lamport's TwoPhase: two-phase commit as a spec; refines TCommit",
        params: two_phase_spec::PARAMS,
        symmetry: true,
        check: |params, options| {
            let model = two_phase_spec::TwoPhase::from_params(params)?;
            let spec = two_phase_spec::spec(&model, options.symmetry);
            Ok(harness::run_spec(
                two_phase_spec::NAME,
                params.clone(),
                &model,
                &spec,
                options,
            ))
        },
        browse: |params| {
            let model = two_phase_spec::TwoPhase::from_params(params)?;
            browser(model, |model| two_phase_spec::spec(model, false))
        },
    },
    ModelEntry {
        name: two_phase::NAME,
        summary: "src/commit's coordinator and participants on a lossy, crashing network",
        params: two_phase::PARAMS,
        symmetry: true,
        check: |params, options| Ok(two_phase::check(params, options)?),
        browse: |params| {
            let model = two_phase::TwoPhaseConfig::from_params(params)?.into_model();
            browser(model, two_phase::spec)
        },
    },
    ModelEntry {
        name: node::NAME,
        summary: "the node `haft node` runs: clients with retries, gets, crashes and restarts, loss",
        params: node::PARAMS,
        symmetry: false,
        check: |params, options| Ok(node::check(params, options)?),
        browse: |params| {
            let model = node::NodeModelConfig::from_params(params)?.into_model();
            browser(model, node::spec)
        },
    },
    ModelEntry {
        name: cluster::NAME,
        summary: "the node through a ring change (a join or a removal) under transactions, reads and crashes",
        params: cluster::PARAMS,
        symmetry: false,
        check: |params, options| Ok(cluster::check(params, options)?),
        browse: |params| {
            let model = node::NodeModelConfig::from_params(params)?.into_model();
            browser(model, node::spec)
        },
    },
    ModelEntry {
        name: bank::NAME,
        summary: "transfers between accounts on different nodes as read-validate-write transactions of src/commit",
        params: bank::PARAMS,
        symmetry: false,
        check: |params, options| Ok(bank::check(params, options)?),
        browse: |params| {
            browser(
                bank::BankConfig::from_params(params)?.into_model(),
                bank::spec,
            )
        },
    },
    ModelEntry {
        name: heartbeat::NAME,
        summary: "src/detector's Heartbeats machine against a discrete clock, with crashes and restarts in new incarnations",
        params: heartbeat::PARAMS,
        symmetry: false,
        check: |params, options| Ok(heartbeat::check(params, options)?),
        browse: |params| browser(heartbeat::HeartbeatModel::from_params(params)?, Spec::of),
    },
    ModelEntry {
        name: ring_handoff::NAME,
        summary: "the node's key moves through a join or a removal, under overwrites, deletes and reads",
        params: ring_handoff::PARAMS,
        symmetry: false,
        check: |params, options| Ok(ring_handoff::check(params, options)?),
        browse: |params| {
            let model = ring_handoff::from_params(params)?;
            browser(model, node::spec)
        },
    },
];

/// A [`Browser`] of `model`, judging what `spec` lists on it: the
/// [`ModelEntry::browse`] of each entry.
fn browser<M>(model: M, spec: fn(&M) -> Spec<M>) -> Result<Box<dyn Browse>, ModelError>
where
    M: stateright::Model + Send + Sync + 'static,
    M::State: Clone + std::fmt::Debug + Send + Sync,
    M::Action: Clone + std::fmt::Debug + Send + Sync,
{
    let spec = spec(&model);
    Ok(Box::new(Browser::new(model, spec)))
}
