//! [`Depositor`] for the ITI-41 client, so the worker can drive it.

use super::client::XdsClient;
use crate::deposit::DepositRequest;
use crate::retry::DepositFailure;
use crate::worker::{DepositReceipt, Depositor};

impl Depositor for XdsClient {
    async fn deposit(&self, request: &DepositRequest) -> Result<DepositReceipt, DepositFailure> {
        let registry = self.provide_and_register(request).await?;
        Ok(DepositReceipt {
            unique_id: request.entry.unique_id.clone(),
            // ITI-41 gives no way to tell an identical re-submission from a first deposit.
            resubmission: false,
            warnings: registry
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.code, e.context))
                .collect(),
        })
    }
}
