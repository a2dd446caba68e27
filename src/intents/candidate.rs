//! A candidate intent found by discovery (a cluster of unmatched texts): what
//! `/v1/intents/discover` lists and the service keeps until the next discovery of its set.

use serde::Serialize;

/// One cluster of a set's unmatched texts, with a suggested name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub id: String,
    pub size: usize,
    /// Distinct texts nearest the cluster's centre, most central first.
    pub representatives: Vec<String>,
    pub suggested_name: String,
    pub key_terms: Vec<String>,
    /// Mean cosine similarity of the members to the cluster's centre.
    pub cohesion: f32,
    #[serde(skip)]
    pub set: String,
    /// Ids of the member texts, most central first.
    #[serde(skip)]
    pub members: Vec<u64>,
}
