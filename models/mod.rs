//! The systems the model checker explores.
//!
//! Each model lives in one file: the spec or system it follows (cited), its
//! parameters, its properties, its symmetry, its variants, and tests that pin its
//! state counts and assert each variant's counterexample. [`registry`] lists them
//! all; `haft check` and the tests reach every model through it.

pub mod bank;
pub mod commit_spec;
pub mod harness;
pub mod heartbeat;
pub mod host;
pub mod network;
pub mod node;
pub mod params;
pub mod refinement;
pub mod ring_handoff;
pub mod two_phase;
pub mod two_phase_spec;

#[cfg(test)]
pub(crate) mod testing;

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{SocketAddr, TcpListener};

use stateright::Model;

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
    explore: fn(&Params, SocketAddr) -> Result<(), ModelError>,
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

    /// Serves stateright's Explorer for the model on `addr` (blocks).
    pub fn explore(&self, params: &Params, addr: SocketAddr) -> Result<(), ModelError> {
        (self.explore)(params, addr)
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
    /// The Explorer could not listen on the address.
    #[error("cannot serve the Explorer on {addr}: {source}; choose another --addr")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
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
        explore: |params, addr| serve(commit_spec::TCommit::from_params(params)?, None, addr),
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
        explore: |params, addr| {
            serve(
                two_phase_spec::TwoPhase::from_params(params)?,
                Some(two_phase_spec::representative),
                addr,
            )
        },
    },
    ModelEntry {
        name: two_phase::NAME,
        summary: "src/commit's coordinator and participants on a lossy, crashing network",
        params: two_phase::PARAMS,
        symmetry: false,
        check: |params, options| Ok(two_phase::check(params, options)?),
        explore: |params, addr| {
            serve(
                two_phase::TwoPhaseConfig::from_params(params)?.into_model(),
                None,
                addr,
            )
        },
    },
    ModelEntry {
        name: node::NAME,
        summary: "the node `haft node` runs: clients with retries, gets, crashes and restarts, loss",
        params: node::PARAMS,
        symmetry: false,
        check: |params, options| Ok(node::check(params, options)?),
        explore: |params, addr| {
            serve(
                node::NodeModelConfig::from_params(params)?.into_model(),
                None,
                addr,
            )
        },
    },
    ModelEntry {
        name: bank::NAME,
        summary: "transfers between accounts on different nodes as read-validate-write transactions of src/commit",
        params: bank::PARAMS,
        symmetry: false,
        check: |params, options| Ok(bank::check(params, options)?),
        explore: |params, addr| {
            serve(
                bank::BankConfig::from_params(params)?.into_model(),
                None,
                addr,
            )
        },
    },
    ModelEntry {
        name: heartbeat::NAME,
        summary: "src/detector's Heartbeats machine against a discrete clock, with crashes and restarts in new incarnations",
        params: heartbeat::PARAMS,
        symmetry: false,
        check: |params, options| Ok(heartbeat::check(params, options)?),
        explore: |params, addr| serve(heartbeat::HeartbeatModel::from_params(params)?, None, addr),
    },
    ModelEntry {
        name: ring_handoff::NAME,
        summary: "src/rebalance's handoff machine moving keys through a join and a leave under overwrites and deletes",
        params: ring_handoff::PARAMS,
        symmetry: false,
        check: |params, options| Ok(ring_handoff::check(params, options)?),
        explore: |params, addr| serve(ring_handoff::from_params(params)?, None, addr),
    },
];

/// Serves stateright's Explorer for `model`. Checks first that the address can
/// be bound, so that a busy port is a clear error rather than a panic inside the
/// Explorer.
fn serve<M>(
    model: M,
    symmetry: Option<harness::Representative<M>>,
    addr: SocketAddr,
) -> Result<(), ModelError>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    drop(TcpListener::bind(addr).map_err(|source| ModelError::Listen { addr, source })?);
    let mut builder = model.checker();
    if let Some(representative) = symmetry {
        builder = builder.symmetry_fn(representative);
    }
    builder.serve(addr);
    Ok(())
}
