//! Server-driven paging: every operation (or audit event, or subject rights request) of a list, following `@odata.nextLink`, as a
//! `Stream`.

use crate::{
    ClientError,
    generated::{
        Client, ClientInfo,
        types::{
            MicrosoftGraphDataPolicyOperation as Operation,
            MicrosoftGraphDataPolicyOperationCollectionResponse as PageBody,
            MicrosoftGraphDirectoryAudit as AuditEvent, MicrosoftGraphDirectoryAuditCollectionResponse as AuditPage,
            MicrosoftGraphSubjectRightsRequest as Request,
            MicrosoftGraphSubjectRightsRequestCollectionResponse as RequestPage,
        },
    },
};
use futures::{Stream, TryStreamExt, stream};

/// OData query options of a list call.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `$filter` expression.
    pub filter: Option<String>,
    /// `$search` phrase.
    pub search: Option<String>,
    /// `$orderby` keys, e.g. `submittedDateTime desc`.
    pub orderby: Vec<String>,
    /// `$select` properties.
    pub select: Vec<String>,
    /// `$top`: the page size (as on Graph, up to the service's maximum); every page repeats it.
    /// To stop after some number of operations, `take` that many from [`Client::list_all_operations`].
    pub top: Option<u64>,
    /// `$skip`.
    pub skip: Option<u64>,
}

/// OData query options of a list of audit events (`/auditLogs/directoryAudits`).
#[derive(Debug, Clone, Default)]
pub struct AuditListOptions {
    /// `$filter` expression, e.g. `targetResources/any(t: t/id eq 'alice')`.
    pub filter: Option<String>,
    /// Oldest first (`$orderby=activityDateTime asc`) instead of Graph's newest first.
    pub oldest_first: bool,
    /// `$top`: the page size.
    pub top: Option<u64>,
}

/// Where a paged read stands: the first page still to fetch, a next link, or the end.
enum Cursor<F> {
    First(F),
    Next(String),
    Done,
}

impl Client {
    /// One page of operations, as the service returns it.
    pub async fn list_operations_page(&self, options: &ListOptions) -> Result<PageBody, ClientError> {
        let orderby = (!options.orderby.is_empty()).then_some(&options.orderby);
        let select = (!options.select.is_empty()).then_some(&options.select);
        let page = self
            .data_policy_operations_data_policy_operation_list_data_policy_operation(
                None,
                None,
                options.filter.as_deref(),
                orderby,
                options.search.as_deref(),
                select,
                options.skip,
                options.top,
            )
            .await?;
        Ok(page.into_inner())
    }

    /// Every operation the list yields, page after page, following `@odata.nextLink` until there is none.
    pub fn list_all_operations(&self, options: ListOptions) -> impl Stream<Item = Result<Operation, ClientError>> + '_ {
        self.follow(
            async move || self.list_operations_page(&options).await,
            |page: PageBody| (page.value, page.odata_next_link),
        )
    }

    /// One page of the caller's tenant's audit events, newest first unless asked otherwise.
    pub async fn list_audit_events_page(&self, options: &AuditListOptions) -> Result<AuditPage, ClientError> {
        let orderby = options.oldest_first.then(|| vec!["activityDateTime asc".to_string()]);
        let page = self
            .audit_logs_list_directory_audits(
                None,
                None,
                options.filter.as_deref(),
                orderby.as_ref(),
                None,
                None,
                None,
                options.top,
            )
            .await?;
        Ok(page.into_inner())
    }

    /// One page of the caller's tenant's subject rights requests (`$search` and `$skip` are not taken).
    pub async fn list_requests_page(&self, options: &ListOptions) -> Result<RequestPage, ClientError> {
        let orderby = (!options.orderby.is_empty()).then_some(&options.orderby);
        let select = (!options.select.is_empty()).then_some(&options.select);
        let page = self
            .security_list_subject_rights_requests(
                None,
                None,
                options.filter.as_deref(),
                orderby,
                None,
                select,
                None,
                options.top,
            )
            .await?;
        Ok(page.into_inner())
    }

    /// Every subject rights request the list yields, following `@odata.nextLink` until there is none.
    pub fn list_all_requests(&self, options: ListOptions) -> impl Stream<Item = Result<Request, ClientError>> + '_ {
        self.follow(
            async move || self.list_requests_page(&options).await,
            |page: RequestPage| (page.value, page.odata_next_link),
        )
    }

    /// Every audit event the list yields, following `@odata.nextLink` until there is none.
    pub fn list_all_audit_events(
        &self,
        options: AuditListOptions,
    ) -> impl Stream<Item = Result<AuditEvent, ClientError>> + '_ {
        self.follow(
            async move || self.list_audit_events_page(&options).await,
            |page: AuditPage| (page.value, page.odata_next_link),
        )
    }

    /// The items of the pages that `first` fetches first and then each next link names, as `split` takes
    /// them apart (items, next link).
    fn follow<'a, P, T, F>(
        &'a self,
        first: F,
        split: fn(P) -> (Vec<T>, Option<String>),
    ) -> impl Stream<Item = Result<T, ClientError>> + 'a
    where
        P: serde::de::DeserializeOwned + 'a,
        T: 'a,
        F: AsyncFnOnce() -> Result<P, ClientError> + 'a,
    {
        stream::try_unfold(Cursor::First(first), move |cursor| async move {
            let page = match cursor {
                Cursor::Done => return Ok(None),
                Cursor::First(first) => first().await?,
                Cursor::Next(url) => {
                    let response =
                        self.client().get(&url).header(reqwest::header::ACCEPT, "application/json").send().await?;
                    if !response.status().is_success() {
                        return Err(crate::error::from_response(response).await);
                    }
                    response.json::<P>().await?
                }
            };
            let (items, next) = split(page);
            let next = next.map_or(Cursor::Done, Cursor::Next);
            Ok(Some((stream::iter(items.into_iter().map(Ok)), next)))
        })
        .try_flatten()
    }
}
