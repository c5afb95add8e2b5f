//! `aerobook.v1.PaymentService`.

use aerobook_proto::v1::{self as pb, payment_service_server::PaymentService};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{app::payments::Payments, domain::validation::Violations};

pub struct PaymentApi {
    payments: Payments,
}

impl PaymentApi {
    pub fn new(payments: Payments) -> Self {
        Self { payments }
    }
}

#[tonic::async_trait]
impl PaymentService for PaymentApi {
    async fn create_payment_intent(
        &self,
        request: Request<pb::CreatePaymentIntentRequest>,
    ) -> Result<Response<pb::Payment>, Status> {
        let call = CallContext::of(&request);
        let (actor, keyed) = (call.actor()?, call.keyed(request.get_ref())?);
        let id = convert::parse_id("booking_id", &request.get_ref().booking_id).map_err(|e| call.fail(e))?;
        let encode = |payment: &_| convert::payment_to_proto(payment).encode_to_vec();
        let outcome = self.payments.create_intent(&actor, &keyed, id, encode).await;
        call.keyed_response(outcome, convert::payment_to_proto)
    }

    async fn get_payment(&self, request: Request<pb::GetPaymentRequest>) -> Result<Response<pb::Payment>, Status> {
        let call = CallContext::of(&request);
        let actor = call.actor()?;
        let id = convert::parse_id("booking_id", &request.get_ref().booking_id).map_err(|e| call.fail(e))?;
        let payment = self.payments.get(&actor, id).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::payment_to_proto(&payment)))
    }

    async fn refund_booking(
        &self,
        request: Request<pb::RefundBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let call = CallContext::of(&request);
        let (actor, keyed) = (call.actor()?, call.keyed(request.get_ref())?);
        let message = request.get_ref();
        let mut v = Violations::new();
        let id = v.check("booking_id", convert::uuid(&message.booking_id));
        let reason = v.check("reason", convert::note(&message.reason));
        let (id, reason) = v.finish_with(|| Some((id?, reason?))).map_err(|e| call.fail(e))?;
        let encode = |booking: &_| convert::booking_to_proto(booking).encode_to_vec();
        let outcome = self.payments.refund(&actor, &keyed, id, reason, encode).await;
        call.keyed_response(outcome, convert::booking_to_proto)
    }

    async fn reconcile_payments(
        &self,
        request: Request<pb::ReconcilePaymentsRequest>,
    ) -> Result<Response<pb::ReconcilePaymentsResponse>, Status> {
        let call = CallContext::of(&request);
        call.signed_in()?;
        let report = self.payments.reconcile().await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::reconciliation_to_proto(&report)))
    }
}
