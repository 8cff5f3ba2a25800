//! The emulator writes its uploads with its own code (so that it does not share bugs with the
//! site under test); here the project's `commerceml` reader reads them, to prove both agree on
//! what 1C output means.

use commerceml::{Item, Operation};
use onec_emulator::xml::{write_upload, OrderLine, OutgoingDocument, UploadSchema};
use rust_decimal::Decimal;

fn document() -> OutgoingDocument {
    OutgoingDocument {
        site_id: Some("132".into()),
        number: "132".into(),
        number_1c: "EM-000001".into(),
        date: "2021-02-11".into(),
        date_1c: "2024-05-06".into(),
        time_1c: "07:08:09".into(),
        version: "AAAAAgAAAAA=".into(),
        currency: "руб".into(),
        sum: Decimal::new(23174, 2),
        buyer_id: "38#catalog_exchange#".into(),
        buyer_name: "Buyer".into(),
        comment: "c".into(),
        posted: true,
        cancelled: false,
        deletion_mark: false,
        shipped: true,
        status_code: Some("P".into()),
        status_name: Some("In progress".into()),
        payment: Some(("PA-000001".into(), "2024-05-06T07:08:09".into())),
        shipment: Some(("SH-000001".into(), "2024-05-06T07:08:09".into())),
        lines: vec![OrderLine {
            id: "910e89e5-205e-4d95-872a-0a0255c42f02".into(),
            name: "Toothbrush".into(),
            quantity: Decimal::ONE,
            price: Decimal::new(23174, 2),
            sum: Decimal::new(23174, 2),
            unit_code: "796".into(),
            service: false,
        }],
    }
}

fn read(xml: &str) -> (commerceml::Root, Vec<Item>) {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(xml.as_bytes());
    commerceml::read::read_all(bytes.as_slice()).unwrap()
}

#[test]
fn uploads_read_back_through_the_commerceml_reader() {
    use commerceml::tags as t;
    for (version, containers) in [("2.08", false), ("3.1", true)] {
        let xml = write_upload(
            &UploadSchema::for_version(Some(version)),
            "2024-05-06T07:08:09",
            &[document()],
        );
        let (root, items) = read(&xml);
        assert_eq!(
            root.schema_version
                .as_ref()
                .map(commerceml::SchemaVersion::as_str),
            Some(version)
        );
        assert!(root.namespace.is_some());
        assert_eq!(items.len(), 1);
        let doc = match &items[0] {
            Item::Document(d) if !containers => (**d).clone(),
            Item::Container(c) if containers => {
                assert_eq!(c.documents.len(), 1);
                c.documents[0].clone()
            }
            other => panic!("{version}: unexpected {other:?}"),
        };
        assert_eq!(doc.operation_kind(), Operation::Order);
        assert_eq!(doc.number.as_deref(), Some("132"));
        assert_eq!(
            doc.number_1c.as_deref(),
            Some("EM-000001"),
            "padding trimmed"
        );
        assert_eq!(doc.date_1c.as_deref(), Some("2024-05-06"));
        assert_eq!(doc.deletion_mark, Some(false));
        assert_eq!(doc.sum, Some(Decimal::new(23174, 2)));
        assert_eq!(doc.requisite(t::REQ_STATUS_ID), Some("P"));
        assert_eq!(doc.requisite(t::REQ_STATUS), Some("In progress"));
        assert_eq!(doc.requisite(t::REQ_POSTED), Some("true"));
        assert_eq!(doc.requisite(t::REQ_SHIPPED), Some("true"));
        assert_eq!(doc.requisite(t::REQ_PAYMENT_NUMBER_1C), Some("PA-000001"));
        assert_eq!(
            doc.requisite(t::REQ_SHIPMENT_DATE_1C),
            Some("2024-05-06T07:08:09")
        );
        assert_eq!(
            doc.buyer().and_then(|b| b.id.as_deref()),
            Some("38#catalog_exchange#")
        );
        let line = &doc.lines[0];
        assert_eq!(line.unit_price(), Some(Decimal::new(23174, 2)));
        assert_eq!(line.price_per_unit, None, "1C writes Цена");
        assert_eq!(line.unit_code(), Some("796"));
        assert_eq!(
            line.unit.as_ref().and_then(|u| u.id.as_deref()),
            Some("796")
        );
        assert!(!line.is_service());
    }
}
