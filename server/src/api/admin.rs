//! `aerobook.v1.AdminService`: the background job queue, for operators (the policy in the proto says who
//! may call; the layers enforce it before these handlers run).

use aerobook_proto::v1::{self as pb, admin_service_server::AdminService};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{
    app::{
        admin::{JobFilter, JobPage, JobQueue, QueueStats},
        job::KINDS,
    },
    domain::{
        job::JobState,
        pagination::{KeyCursor, page_size},
        validation::{ValidationError, Violations},
    },
    store::outbox::JobRecord,
};

pub struct AdminApi {
    queue: JobQueue,
}

impl AdminApi {
    pub fn new(queue: JobQueue) -> Self {
        Self { queue }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_jobs(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let call = CallContext::of(&request);
        let (filter, after, size) = list_query(request.get_ref()).map_err(|e| call.fail(e))?;
        let page = self.queue.list(filter, after, size).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(page_to_proto(page)))
    }

    async fn retry_job(&self, request: Request<pb::RetryJobRequest>) -> Result<Response<pb::Job>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let job_id = convert::parse_id("job_id", &request.get_ref().job_id).map_err(|e| call.fail(e))?;
        let encode = |job: &JobRecord| job_to_proto(job).encode_to_vec();
        let outcome = self.queue.retry(&keyed, job_id, encode).await;
        call.keyed_response(outcome, job_to_proto)
    }

    async fn discard_job(&self, request: Request<pb::DiscardJobRequest>) -> Result<Response<pb::Job>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let job_id = convert::parse_id("job_id", &request.get_ref().job_id).map_err(|e| call.fail(e))?;
        let encode = |job: &JobRecord| job_to_proto(job).encode_to_vec();
        let outcome = self.queue.discard(&keyed, job_id, encode).await;
        call.keyed_response(outcome, job_to_proto)
    }

    async fn retry_jobs(
        &self,
        request: Request<pb::RetryJobsRequest>,
    ) -> Result<Response<pb::RetryJobsResponse>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let (state, kind) = bulk_query(request.get_ref()).map_err(|e| call.fail(e))?;
        let retried_to_proto =
            |retried: &u64| pb::RetryJobsResponse { retried: i64::try_from(*retried).unwrap_or(i64::MAX) };
        let encode = |retried: &u64| retried_to_proto(retried).encode_to_vec();
        let outcome = self.queue.retry_all(&keyed, state, kind, encode).await;
        call.keyed_response(outcome, retried_to_proto)
    }

    async fn get_queue_stats(
        &self,
        request: Request<pb::GetQueueStatsRequest>,
    ) -> Result<Response<pb::QueueStats>, Status> {
        let call = CallContext::of(&request);
        let stats = self.queue.stats().await.map_err(|e| call.fail(e))?;
        Ok(Response::new(stats_to_proto(&stats)))
    }
}

pub(super) fn list_query(
    request: &pb::ListJobsRequest,
) -> Result<(JobFilter, Option<uuid::Uuid>, u32), ValidationError> {
    let mut v = Violations::new();
    let state = v.check("state", optional_job_state(request.state));
    let kind = v.check("kind", job_kind(&request.kind));
    let size = v.check("page_size", page_size(request.page_size));
    let after = v.check("page_token", KeyCursor::decode_key(&request.page_token, convert::uuid));
    v.finish_with(|| Some((JobFilter { state: state?, kind: kind? }, after?, size?)))
}

pub(super) fn bulk_query(request: &pb::RetryJobsRequest) -> Result<(JobState, Option<String>), ValidationError> {
    let mut v = Violations::new();
    let state = v.check("state", bulk_retry_state(request.state));
    let kind = v.check("kind", job_kind(&request.kind));
    v.finish_with(|| Some((state?, kind?)))
}

/// A state `RetryJobs` takes: required, and one a job rests in after things went wrong.
fn bulk_retry_state(value: i32) -> Result<JobState, String> {
    let allowed = || JobState::BULK_RETRYABLE.map(job_state_name).join(", ");
    match optional_job_state(value)? {
        Some(state) if JobState::BULK_RETRYABLE.contains(&state) => Ok(state),
        _ => Err(format!("must be one of {}", allowed())),
    }
}

/// Unspecified means every state.
fn optional_job_state(value: i32) -> Result<Option<JobState>, String> {
    match pb::JobState::try_from(value) {
        Ok(pb::JobState::Unspecified) => Ok(None),
        Ok(pb::JobState::Queued) => Ok(Some(JobState::Queued)),
        Ok(pb::JobState::Running) => Ok(Some(JobState::Running)),
        Ok(pb::JobState::Failed) => Ok(Some(JobState::Failed)),
        Ok(pb::JobState::Dead) => Ok(Some(JobState::Dead)),
        Ok(pb::JobState::Done) => Ok(Some(JobState::Done)),
        Ok(pb::JobState::Discarded) => Ok(Some(JobState::Discarded)),
        Err(_) => Err(format!("{value} is not a JobState")),
    }
}

/// Empty means every kind.
fn job_kind(kind: &str) -> Result<Option<String>, String> {
    if kind.is_empty() {
        return Ok(None);
    }
    if KINDS.contains(&kind) { Ok(Some(kind.to_owned())) } else { Err(format!("must be one of {}", KINDS.join(", "))) }
}

fn job_state_to_proto(state: JobState) -> pb::JobState {
    match state {
        JobState::Queued => pb::JobState::Queued,
        JobState::Running => pb::JobState::Running,
        JobState::Failed => pb::JobState::Failed,
        JobState::Dead => pb::JobState::Dead,
        JobState::Done => pb::JobState::Done,
        JobState::Discarded => pb::JobState::Discarded,
    }
}

/// The contract's name of a job state (`JOB_STATE_DEAD`), as error metadata gives it.
pub fn job_state_name(state: JobState) -> &'static str {
    job_state_to_proto(state).as_str_name()
}

fn job_to_proto(job: &JobRecord) -> pb::Job {
    pb::Job {
        id: job.id.to_string(),
        kind: job.kind.clone(),
        state: job_state_to_proto(job.state).into(),
        attempts: job.attempts,
        last_error: job.last_error.clone().unwrap_or_default(),
        run_at: Some(convert::timestamp(job.run_at)),
        created_at: Some(convert::timestamp(job.created_at)),
        correlation_id: job.correlation_id.clone().unwrap_or_default(),
    }
}

fn page_to_proto(page: JobPage) -> pb::ListJobsResponse {
    pb::ListJobsResponse {
        jobs: page.jobs.iter().map(job_to_proto).collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
    }
}

fn stats_to_proto(stats: &QueueStats) -> pb::QueueStats {
    pb::QueueStats {
        queued: stats.counts.queued,
        running: stats.counts.running,
        failed: stats.counts.failed,
        dead: stats.counts.dead,
        discarded: stats.counts.discarded,
        oldest_queued_age: Some(convert::duration(stats.oldest_queued_age)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_state_has_its_contract_name() {
        let names: Vec<_> = JobState::ALL.iter().map(|s| job_state_name(*s)).collect();
        assert_eq!(
            names,
            [
                "JOB_STATE_QUEUED",
                "JOB_STATE_RUNNING",
                "JOB_STATE_FAILED",
                "JOB_STATE_DEAD",
                "JOB_STATE_DONE",
                "JOB_STATE_DISCARDED"
            ]
        );
        for state in JobState::ALL {
            assert_eq!(optional_job_state(job_state_to_proto(*state).into()), Ok(Some(*state)));
        }
        assert_eq!(optional_job_state(0), Ok(None));
        assert!(optional_job_state(99).is_err());
    }

    #[test]
    fn bulk_retries_name_a_state_jobs_rest_in() {
        for state in [pb::JobState::Failed, pb::JobState::Dead, pb::JobState::Discarded] {
            assert!(bulk_retry_state(state.into()).is_ok(), "{state:?}");
        }
        for state in [pb::JobState::Unspecified, pb::JobState::Queued, pb::JobState::Running, pb::JobState::Done] {
            assert_eq!(
                bulk_retry_state(state.into()),
                Err("must be one of JOB_STATE_FAILED, JOB_STATE_DEAD, JOB_STATE_DISCARDED".to_owned())
            );
        }
        assert!(bulk_retry_state(42).is_err());
    }

    #[test]
    fn kinds_filter_by_the_known_ones() {
        assert_eq!(job_kind(""), Ok(None));
        assert_eq!(job_kind("SEND_EMAIL"), Ok(Some("SEND_EMAIL".to_owned())));
        assert!(job_kind("send_email").is_err());
    }
}
