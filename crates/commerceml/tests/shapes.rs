//! Document shapes beyond the fixtures: every unit form, bare requisites, subordinate
//! documents, unknown elements, namespaces, whitespace and entity rules.

use std::str::FromStr;

use commerceml::read::read_all;
use commerceml::tags as t;
use commerceml::{Document, Item, Root};
use rust_decimal::Decimal;

/// `<name>inner</name>`.
fn e(name: &str, inner: &str) -> String {
    format!("<{name}>{inner}</{name}>")
}

fn doc_xml(root_attrs: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{r} {v}=\"2.08\"{root_attrs}>\n{inner}\n</{r}>\n",
        r = t::ROOT,
        v = t::ATTR_SCHEMA_VERSION
    )
}

fn read(xml: &str) -> (Root, Vec<Item>) {
    read_all(xml.as_bytes()).unwrap_or_else(|err| panic!("{err}\n{xml}"))
}

fn one_document(xml: &str) -> Document {
    let (_, items) = read(xml);
    match items.as_slice() {
        [Item::Document(d)] => (**d).clone(),
        other => panic!("{other:?}"),
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

#[test]
fn every_unit_form() {
    let base = format!(
        "<{b} {c}=\" 796 \" {f}=\"{full}\" {i}=\"PCE\">{short}</{b}>",
        b = t::BASE_UNIT,
        c = t::UNIT_CODE,
        f = t::UNIT_FULL_NAME,
        i = t::UNIT_INTERNATIONAL,
        full = t::UNIT_PIECE_FULL,
        short = t::UNIT_PIECE_SHORT,
    );
    let children = e(
        t::UNIT,
        &[
            e(t::ID, "796 "),
            e(t::UNIT_SHORT_NAME, t::UNIT_PIECE_SHORT),
            e(t::UNIT_CODE, "796"),
            e(t::UNIT_FULL_NAME, &format!("{}     ", t::UNIT_PIECE_FULL)),
        ]
        .concat(),
    );
    let plain = e(t::UNIT, t::UNIT_PIECE_SHORT);
    let unf = format!(
        "<{b} {c}=\"796\"/>{plain}",
        b = t::BASE_UNIT,
        c = t::UNIT_CODE
    );
    let lines = [base, children, plain.clone(), unf]
        .iter()
        .map(|u| {
            e(
                t::LINE,
                &format!("{}{u}{}", e(t::ID, "x"), e(t::COEFFICIENT, "1")),
            )
        })
        .collect::<String>();
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &e(t::LINES, &lines))));
    let [a, b, c, u] = &doc.lines[..] else {
        panic!("{:?}", doc.lines)
    };
    let bu = a.base_unit.as_ref().expect("base unit");
    assert_eq!(bu.code.as_deref(), Some("796"));
    assert_eq!(bu.full_name.as_deref(), Some(t::UNIT_PIECE_FULL));
    assert_eq!(bu.international.as_deref(), Some("PCE"));
    assert_eq!(bu.short_name.as_deref(), Some(t::UNIT_PIECE_SHORT));
    assert_eq!(a.unit_code(), Some("796"));

    let un = b.unit.as_ref().expect("unit");
    assert_eq!(un.id.as_deref(), Some("796"));
    assert_eq!(un.code.as_deref(), Some("796"));
    assert_eq!(un.short_name.as_deref(), Some(t::UNIT_PIECE_SHORT));
    assert_eq!(un.full_name.as_deref(), Some(t::UNIT_PIECE_FULL));
    assert_eq!(b.coefficient, Some(d("1")));

    let pl = c.unit.as_ref().expect("plain unit");
    assert_eq!(pl.short_name.as_deref(), Some(t::UNIT_PIECE_SHORT));
    assert_eq!(pl.code, None);
    assert_eq!(c.unit_code(), Some(t::UNIT_PIECE_SHORT));

    // UNF: empty БазоваяЕдиница with a code, and a plain Единица.
    assert_eq!(
        u.base_unit.as_ref().and_then(|x| x.code.as_deref()),
        Some("796")
    );
    assert_eq!(
        u.unit.as_ref().and_then(|x| x.short_name.as_deref()),
        Some(t::UNIT_PIECE_SHORT)
    );
    assert_eq!(u.unit_code(), Some("796"));
}

#[test]
fn bare_requisites_under_document_and_line() {
    let req = |n: &str, v: &str| {
        e(
            t::REQUISITE,
            &format!("{}{}", e(t::NAME, n), e(t::VALUE, v)),
        )
    };
    let line = e(
        t::LINE,
        &format!(
            "{}{}",
            e(t::ID, "a"),
            req(t::REQ_ITEM_TYPE, t::ITEM_SERVICE)
        ),
    );
    let inner = format!(
        "{}{}{}{}",
        req(t::REQ_STATUS_ID, "P"),
        e(t::REQUISITES, &req(t::REQ_CANCELLED, "false")),
        e(t::LINES, &line),
        e(t::REQUISITE, &e(t::NAME, t::REQ_PAID)),
    );
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(doc.requisite(t::REQ_STATUS_ID), Some("P"));
    assert_eq!(doc.requisite(t::REQ_CANCELLED), Some("false"));
    assert_eq!(doc.requisites.len(), 3);
    assert_eq!(doc.requisites[2].value, None, "missing Значение");
    assert!(doc.lines[0].is_service());
}

#[test]
fn subordinate_documents() {
    let sub = |id: &str, op: &str| {
        e(
            t::SUBORDINATE,
            &format!(
                "{}{}{}",
                e(t::ID, id),
                e(t::OPERATION, op),
                e(t::SUM, "10.5")
            ),
        )
    };
    let inner = format!(
        "{}{}",
        e(t::ID, "1"),
        e(
            t::SUBORDINATES,
            &format!(
                "{}{}",
                sub("p1", t::OP_CARD_PAYMENT),
                sub("s1", t::OP_SHIPMENT)
            )
        )
    );
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(doc.subordinates.len(), 2);
    assert!(doc.subordinates[0].operation_kind().is_payment());
    assert_eq!(doc.subordinates[1].id.as_deref(), Some("s1"));
    assert_eq!(doc.subordinates[1].sum, Some(d("10.5")));
}

#[test]
fn unknown_elements_are_kept_with_attributes_and_children() {
    let inner = format!(
        "{}<X a=\"1\" b=\"&lt;q&gt;\"><Y>  y  </Y><Z/></X>{}",
        e(t::ID, "1"),
        e(t::CURRENCY, "RUB")
    );
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(doc.currency.as_deref(), Some("RUB"));
    let [x] = &doc.extra[..] else {
        panic!("{:?}", doc.extra)
    };
    assert_eq!(x.name, "X");
    assert_eq!(
        x.attributes,
        vec![("a".into(), "1".into()), ("b".into(), "<q>".into())]
    );
    assert_eq!(x.text, None);
    assert_eq!(x.children.len(), 2);
    assert_eq!(x.children[0].text.as_deref(), Some("y"));
    assert_eq!(x.children[1].name, "Z");
}

#[test]
fn repeated_scalar_goes_to_extra() {
    let inner = format!("{}{}", e(t::NUMBER, "1"), e(t::NUMBER, "2"));
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(doc.number.as_deref(), Some("1"));
    assert_eq!(doc.extra.len(), 1);
    assert_eq!(doc.extra[0].name, t::NUMBER);
    assert_eq!(doc.extra[0].text.as_deref(), Some("2"));
}

#[test]
fn trimming_empty_and_absent() {
    let name = "\n   first  line\n      second line  \t";
    let inner = format!(
        "{}{}<{c}/>{}",
        e(t::NUMBER, "  42 \r\n"),
        e(t::COMMENT, name).replace(t::COMMENT, t::OPERATION),
        e(t::SUM, "\n 1 320,50 \n"),
        c = t::COMMENT,
    );
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(doc.number.as_deref(), Some("42"));
    assert_eq!(
        doc.operation.as_deref(),
        Some("first  line\n      second line")
    );
    assert_eq!(doc.comment.as_deref(), Some(""), "present but empty");
    assert_eq!(doc.id, None, "absent");
    assert_eq!(doc.sum, Some(d("1320.5")));
}

#[test]
fn line_ends_are_normalized_and_entities_decoded_once() {
    let inner = format!(
        "{}{}{}",
        e(
            t::COMMENT,
            "a\r\nb\rc &amp;quot;x&amp;quot; &#8381; &#x20BD; &lt;&gt;&apos;&quot;"
        ),
        e(t::NUMBER, "<![CDATA[ <raw> &amp; ]]>"),
        e(t::ID, "a<!-- comment -->b"),
    );
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(
        doc.comment.as_deref(),
        Some("a\nb\nc &quot;x&quot; \u{20bd} \u{20bd} <>'\"")
    );
    assert_eq!(doc.number.as_deref(), Some("<raw> &amp;"));
    assert_eq!(doc.id.as_deref(), Some("ab"));
}

#[test]
fn prefixed_namespace_and_local_names() {
    let xml = format!(
        "<?xml version=\"1.0\"?><c:{r} xmlns:c=\"{ns}\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" {v}=\"3.1\" {id}=\"7\"><c:{d}><c:{n}>5</c:{n}></c:{d}></c:{r}>",
        r = t::ROOT,
        ns = t::NAMESPACE_3,
        v = t::ATTR_SCHEMA_VERSION,
        id = t::ID,
        d = t::DOCUMENT,
        n = t::NUMBER
    );
    let (root, items) = read(&xml);
    assert_eq!(root.namespace.as_deref(), Some(t::NAMESPACE_3));
    assert_eq!(
        root.schema_version
            .as_ref()
            .map(commerceml::SchemaVersion::as_str),
        Some("3.1")
    );
    assert!(root.attributes.iter().any(|(k, v)| k == t::ID && v == "7"));
    assert!(root.attributes.iter().any(|(k, _)| k == "xmlns:xs"));
    let [Item::Document(doc)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(doc.number.as_deref(), Some("5"));
}

#[test]
fn default_namespace_is_recorded_not_kept_as_attribute() {
    let xml = doc_xml(&format!(" xmlns=\"{}\"", t::NAMESPACE_2), "");
    let (root, items) = read(&xml);
    assert!(items.is_empty());
    assert_eq!(root.namespace.as_deref(), Some(t::NAMESPACE_2));
    assert!(root.attributes.iter().all(|(k, _)| k != "xmlns"));
}

#[test]
fn root_level_counterparties_yield_one_item_each() {
    let cp = |id: &str| {
        e(
            t::COUNTERPARTY,
            &format!("{}{}", e(t::ID, id), e(t::NAME, id)),
        )
    };
    let inner = format!(
        "<{cs} Flag=\"true\">{}{}</{cs}>{}",
        cp("a"),
        cp("b"),
        e(t::DOCUMENT, &e(t::ID, "1")),
        cs = t::COUNTERPARTIES
    );
    let (_, items) = read(&doc_xml("", &inner));
    assert_eq!(items.len(), 3);
    assert!(matches!(&items[0], Item::Counterparty(c) if c.id.as_deref() == Some("a")));
    assert!(matches!(&items[1], Item::Counterparty(c) if c.id.as_deref() == Some("b")));
    assert!(matches!(&items[2], Item::Document(_)));
}

#[test]
fn containers_keep_order_and_id() {
    let inner = [
        e(
            t::CONTAINER,
            &format!(
                "{}{}{}",
                e(t::ID, "c1"),
                e(t::DOCUMENT, &e(t::ID, "1")),
                e(t::DOCUMENT, &e(t::ID, "2"))
            ),
        ),
        e(t::CONTAINER, &e(t::DOCUMENT, &e(t::ID, "3"))),
    ]
    .concat();
    let (_, items) = read(&doc_xml("", &inner));
    let [Item::Container(a), Item::Container(b)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(a.id.as_deref(), Some("c1"));
    assert_eq!(a.documents.len(), 2);
    assert_eq!(b.documents[0].id.as_deref(), Some("3"));
}

#[test]
fn custom_decimal_separator_from_the_root_format() {
    let key = t::FORMAT_DECIMAL_SEPARATOR_KEY;
    let format = t::FORMAT_SUM.replace(&format!("{key}."), &format!("{key}'"));
    let attrs = format!(" {}=\"{format}\"", t::ATTR_SUM_FORMAT);
    let inner = e(
        t::DOCUMENT,
        &format!("{}{}", e(t::SUM, "12'50"), e(t::RATE, "1,5")),
    );
    let doc = one_document(&doc_xml(&attrs, &inner));
    assert_eq!(doc.sum, Some(d("12.50")));
    assert_eq!(doc.rate, Some(d("1.5")));
}

#[test]
fn counterparty_with_everything() {
    let addr = |kind: &str| {
        e(
            kind,
            &format!(
                "{}{}",
                e(t::PRESENTATION, "City, Street 1"),
                e(
                    t::ADDRESS_FIELD,
                    &format!("{}{}", e(t::KIND, t::ADDR_CITY), e(t::VALUE, "City"))
                )
            ),
        )
    };
    let inner = [
        e(t::ID, "1#admin#"),
        e(t::DELETION_MARK, "false"),
        e(t::OFFICIAL_NAME, "LLC"),
        e(t::INN, ""),
        addr(t::LEGAL_ADDRESS),
        addr(t::ADDRESS),
        e(
            t::CONTACTS,
            &e(
                t::CONTACT,
                &format!("{}{}", e(t::KIND, t::CONTACT_EMAIL), e(t::VALUE, "a@b")),
            ),
        ),
        e(
            t::BANK_ACCOUNTS,
            &e(
                t::BANK_ACCOUNT,
                &format!(
                    "{}{}<Other/>",
                    e(t::ACCOUNT_NUMBER, "4070"),
                    e(
                        t::BANK,
                        &format!(
                            "{}{}{}",
                            e(t::NAME, "Bank"),
                            e(t::BIC, "044"),
                            e(t::CORRESPONDENT_ACCOUNT, "3010")
                        )
                    )
                ),
            ),
        ),
        e(t::ROLE, t::ROLE_BUYER),
        "<Unknown>u</Unknown>".to_owned(),
    ]
    .concat();
    let doc = one_document(&doc_xml(
        "",
        &e(
            t::DOCUMENT,
            &e(t::COUNTERPARTIES, &e(t::COUNTERPARTY, &inner)),
        ),
    ));
    let c = doc.buyer().expect("buyer");
    assert_eq!(c.deletion_mark, Some(false));
    assert_eq!(c.inn.as_deref(), Some(""));
    assert_eq!(c.legal_address.as_ref().map(|a| a.fields.len()), Some(1));
    assert_eq!(
        c.address.as_ref().and_then(|a| a.presentation.as_deref()),
        Some("City, Street 1")
    );
    assert_eq!(c.contacts[0].kind, t::CONTACT_EMAIL);
    let acc = &c.bank_accounts[0];
    assert_eq!(acc.number.as_deref(), Some("4070"));
    let bank = acc.bank.as_ref().expect("bank");
    assert_eq!(bank.bic.as_deref(), Some("044"));
    assert_eq!(bank.correspondent_account.as_deref(), Some("3010"));
    assert_eq!(acc.extra[0].name, "Other");
    assert_eq!(c.extra[0].name, "Unknown");
}

#[test]
fn taxes_discounts_warehouses() {
    let tax = e(
        t::TAX,
        &format!(
            "{}{}{}{}",
            e(t::NAME, t::TAX_VAT),
            e(t::INCLUDED, "true"),
            e(t::SUM, "3.33"),
            e(t::RATE_VALUE, "20")
        ),
    );
    let discount = e(
        t::DISCOUNT,
        &format!(
            "{}{}{}{}",
            e(t::NAME, t::DISCOUNT_ON_LINE),
            e(t::SUM, "5"),
            e(t::PERCENT, "10"),
            e(t::INCLUDED, "true")
        ),
    );
    let line = e(
        t::LINE,
        &format!(
            "{}{}{}{}",
            e(
                t::TAX_RATES,
                &e(
                    t::TAX_RATE,
                    &format!("{}{}", e(t::NAME, t::TAX_VAT), e(t::RATE_VALUE, "20"))
                )
            ),
            e(t::TAXES, &tax),
            e(t::DISCOUNTS, &discount),
            e(t::SUM, "100")
        ),
    );
    let inner = format!(
        "{}{}{}{}{}",
        e(t::TAXES, &tax),
        e(t::DISCOUNTS, &discount),
        e(
            t::WAREHOUSES,
            &e(
                t::WAREHOUSE,
                &format!("{}{}", e(t::ID, "w"), e(t::NAME, "Store"))
            )
        ),
        e(t::LINES, &line),
        e(t::SUM, "99")
    );
    let doc = one_document(&doc_xml("", &e(t::DOCUMENT, &inner)));
    assert_eq!(doc.taxes[0].included, Some(true));
    assert_eq!(doc.taxes[0].sum, Some(d("3.33")));
    assert_eq!(doc.discounts[0].percent, Some(d("10")));
    assert_eq!(doc.warehouses[0].name.as_deref(), Some("Store"));
    let l = &doc.lines[0];
    assert_eq!(l.tax_rates[0].rate.as_deref(), Some("20"));
    assert_eq!(l.taxes[0].rate.as_deref(), Some("20"));
    assert_eq!(l.discounts[0].sum, Some(d("5")));
    assert_eq!(doc.sum_matches(), Some(false));
}

#[test]
fn other_root_children_are_generic_elements() {
    let (_, items) = read(&doc_xml("", "<Catalog id=\"1\"><Item>a</Item></Catalog>"));
    let [Item::Other(el)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(el.name, "Catalog");
    assert_eq!(el.children[0].text.as_deref(), Some("a"));
}
