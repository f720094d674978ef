//! Server-driven paging: every operation of a list, following `@odata.nextLink`, as a `Stream`.

use crate::{
    ClientError,
    generated::{
        Client, ClientInfo,
        types::{
            MicrosoftGraphDataPolicyOperation as Operation,
            MicrosoftGraphDataPolicyOperationCollectionResponse as PageBody,
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

enum Cursor {
    First(ListOptions),
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
        stream::try_unfold(Cursor::First(options), move |cursor| async move {
            let page = match cursor {
                Cursor::Done => return Ok(None),
                Cursor::First(options) => self.list_operations_page(&options).await?,
                Cursor::Next(url) => {
                    let response =
                        self.client().get(&url).header(reqwest::header::ACCEPT, "application/json").send().await?;
                    if !response.status().is_success() {
                        return Err(crate::error::from_response(response).await);
                    }
                    response.json::<PageBody>().await?
                }
            };
            let next = page.odata_next_link.clone().map_or(Cursor::Done, Cursor::Next);
            Ok(Some((stream::iter(page.value.into_iter().map(Ok)), next)))
        })
        .try_flatten()
    }
}
