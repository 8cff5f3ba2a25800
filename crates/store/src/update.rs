//! What a 1C document changes in an order.
//!
//! Until `exchange::import::Update` is on main this is a stand-in with the same fields; it will
//! become a re-export of that type (callers keep writing `store::Update`).

/// The changes to make to one order. Only fields that differ from the stored order are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// New site status code.
    pub status: Option<String>,
    /// New 1C status name.
    pub status_1c: Option<String>,
    /// New paid flag.
    pub paid: Option<bool>,
    /// New shipped flag.
    pub shipped: Option<bool>,
    /// New cancelled flag.
    pub cancelled: Option<bool>,
    /// New deletion mark.
    pub deleted: Option<bool>,
    /// New 1C number.
    pub number_1c: Option<String>,
    /// New 1C date.
    pub date_1c: Option<String>,
    /// New 1C document id.
    pub id_1c: Option<String>,
    /// New 1C payment number.
    pub payment_number_1c: Option<String>,
    /// New 1C payment date.
    pub payment_date_1c: Option<String>,
    /// New 1C shipment number.
    pub shipment_number_1c: Option<String>,
    /// New 1C shipment date.
    pub shipment_date_1c: Option<String>,
    /// Messages for the journal and for 1C (unknown status, …). Not a change.
    pub messages: Vec<String>,
}

impl Update {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.status_1c.is_none()
            && self.paid.is_none()
            && self.shipped.is_none()
            && self.cancelled.is_none()
            && self.deleted.is_none()
            && self.number_1c.is_none()
            && self.date_1c.is_none()
            && self.id_1c.is_none()
            && self.payment_number_1c.is_none()
            && self.payment_date_1c.is_none()
            && self.shipment_number_1c.is_none()
            && self.shipment_date_1c.is_none()
    }
}
