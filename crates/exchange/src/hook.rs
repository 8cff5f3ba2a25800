//! Export and import hooks: small Rhai scripts a project configures to change documents.
//!
//! The export hook sees every exported order (`order`, read-only) and the document being built
//! (`doc`); it can add, change or remove requisites and lines. The import hook sees every
//! incoming 1C document (`doc`) before it is applied. Scripts run sandboxed (no file, network or
//! process access) with an operation limit and a time limit; a script that fails or runs too
//! long gives a [`HookError`] naming the script and the line, and the document is left as it
//! was. After an export hook the document `Сумма` is recomputed from the lines, so totals still
//! reconcile.
//!
//! In a script, `doc` is a map:
//! `#{ id, number, sum, currency, comment, requisites: [#{name, value}], lines: [#{id, name, sku,
//! quantity, price, sum, service}] }` with amounts as strings; helper methods:
//! `doc.requisite(name)`, `doc.set_requisite(name, value)`, `doc.remove_requisite(name)`,
//! `doc.add_line(#{…})`, `doc.remove_line(id)`. See docs/hooks.md for worked examples.

use std::str::FromStr;
use std::time::{Duration, Instant};

use commerceml::tags as t;
use commerceml::{names_match, Document, Line, Requisite, Unit};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Scope, AST};
use rust_decimal::Decimal;

use crate::domain::Order;

/// Limits a hook runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookLimits {
    /// Maximum number of script operations per call.
    pub max_operations: u64,
    /// Maximum wall time per call.
    pub timeout: Duration,
}

impl Default for HookLimits {
    fn default() -> Self {
        Self {
            max_operations: 1_000_000,
            timeout: Duration::from_millis(500),
        }
    }
}

/// A hook that failed to compile or to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hook {script}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct HookError {
    /// The script's name (its file name).
    pub script: String,
    /// The script line, when known.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

/// A compiled hook script.
pub struct Hook {
    name: String,
    engine: Engine,
    ast: AST,
    limits: HookLimits,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Hook {
    /// Compiles a script. `name` is used in error messages.
    pub fn compile(name: &str, source: &str, limits: HookLimits) -> Result<Self, HookError> {
        let engine = build_engine(limits);
        let ast = engine.compile(source).map_err(|e| HookError {
            script: name.to_owned(),
            line: e.1.line(),
            message: e.0.to_string(),
        })?;
        Ok(Self {
            name: name.to_owned(),
            engine,
            ast,
            limits,
        })
    }

    /// The script's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> HookLimits {
        self.limits
    }

    /// Runs the hook on an exported order's document. On error `doc` is unchanged.
    pub fn on_export(&self, order: &Order, doc: &mut Document) -> Result<(), HookError> {
        let order = rhai::serde::to_dynamic(order).map_err(|e| self.error(&e))?;
        let mut changed = doc.clone();
        self.run(Some(order), &mut changed)?;
        changed.sum = changed.lines_total().or(changed.sum);
        *doc = changed;
        Ok(())
    }

    /// Runs the hook on an incoming 1C document. On error `doc` is unchanged.
    pub fn on_import(&self, doc: &mut Document) -> Result<(), HookError> {
        let mut changed = doc.clone();
        self.run(None, &mut changed)?;
        *doc = changed;
        Ok(())
    }

    fn run(&self, order: Option<Dynamic>, doc: &mut Document) -> Result<(), HookError> {
        let mut scope = Scope::new();
        if let Some(order) = order {
            scope.push_constant("order", order);
        }
        scope.push("doc", doc_to_map(doc));
        let deadline =
            (!self.limits.timeout.is_zero()).then(|| Instant::now() + self.limits.timeout);
        DEADLINE.with(|d| d.set(deadline));
        let result = self.engine.run_ast_with_scope(&mut scope, &self.ast);
        DEADLINE.with(|d| d.set(None));
        result.map_err(|e| self.error(&e))?;
        let map = scope.get_value::<Map>("doc").ok_or_else(|| HookError {
            script: self.name.clone(),
            line: None,
            message: "the script replaced `doc` with something that is not a map".into(),
        })?;
        map_to_doc(&map, doc).map_err(|message| HookError {
            script: self.name.clone(),
            line: None,
            message,
        })
    }

    fn error(&self, e: &EvalAltResult) -> HookError {
        let message = match e {
            EvalAltResult::ErrorTooManyOperations(_) => {
                format!("stopped after {} operations", self.limits.max_operations)
            }
            EvalAltResult::ErrorTerminated(reason, _) => format!("stopped: {reason}"),
            // The line is reported separately; Rhai's own "(line 1, position 5)" would repeat it.
            other => {
                let text = other.to_string();
                let position = format!(" ({})", other.position());
                match text.strip_suffix(&position) {
                    Some(bare) if !other.position().is_none() => bare.to_owned(),
                    _ => text,
                }
            }
        };
        HookError {
            script: self.name.clone(),
            line: e.position().line(),
            message,
        }
    }
}

thread_local! {
    /// The deadline of the hook running on this thread; scripts run synchronously, so the
    /// engine's progress callback can read it without sharing state between calls.
    static DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

fn build_engine(limits: HookLimits) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(32);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(1 << 20);
    engine.set_max_array_size(100_000);
    engine.set_max_map_size(100_000);
    engine.disable_symbol("eval");
    engine.on_progress(|_| {
        let late = DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() > at));
        late.then(|| Dynamic::from("time limit exceeded"))
    });
    register_helpers(&mut engine);
    engine
}

fn register_helpers(engine: &mut Engine) {
    engine.register_fn("requisite", |doc: &mut Map, name: &str| -> Dynamic {
        requisites(doc)
            .into_iter()
            .find(|r| field(r, "name").is_some_and(|n| names_match(&n, name)))
            .and_then(|r| r.try_cast::<Map>()?.get("value").cloned())
            .unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn(
        "set_requisite",
        |doc: &mut Map, name: &str, value: Dynamic| {
            let value = value.to_string();
            let mut reqs = requisites(doc);
            let existing = reqs
                .iter_mut()
                .find(|r| field(r, "name").is_some_and(|n| names_match(&n, name)));
            match existing {
                Some(r) => {
                    if let Some(mut m) = r.clone().try_cast::<Map>() {
                        m.insert("value".into(), value.into());
                        *r = m.into();
                    }
                }
                None => {
                    let mut m = Map::new();
                    m.insert("name".into(), name.into());
                    m.insert("value".into(), value.into());
                    reqs.push(m.into());
                }
            }
            doc.insert("requisites".into(), reqs.into());
        },
    );
    engine.register_fn("remove_requisite", |doc: &mut Map, name: &str| {
        let reqs: Array = requisites(doc)
            .into_iter()
            .filter(|r| !field(r, "name").is_some_and(|n| names_match(&n, name)))
            .collect();
        doc.insert("requisites".into(), reqs.into());
    });
    engine.register_fn("add_line", |doc: &mut Map, line: Map| {
        let mut lines = array(doc, "lines");
        lines.push(line.into());
        doc.insert("lines".into(), lines.into());
    });
    engine.register_fn("remove_line", |doc: &mut Map, id: &str| {
        let lines: Array = array(doc, "lines")
            .into_iter()
            .filter(|l| field(l, "id").as_deref() != Some(id))
            .collect();
        doc.insert("lines".into(), lines.into());
    });
}

fn requisites(doc: &Map) -> Array {
    array(doc, "requisites")
}

fn array(doc: &Map, key: &str) -> Array {
    doc.get(key)
        .and_then(|v| v.clone().try_cast::<Array>())
        .unwrap_or_default()
}

fn field(v: &Dynamic, key: &str) -> Option<String> {
    let map = v.read_lock::<Map>()?;
    let value = map.get(key)?;
    (!value.is_unit()).then(|| value.to_string())
}

fn opt(v: Option<&String>) -> Dynamic {
    v.map_or(Dynamic::UNIT, |s| s.clone().into())
}

fn dec(v: Option<Decimal>) -> Dynamic {
    v.map_or(Dynamic::UNIT, |d| d.to_string().into())
}

fn doc_to_map(doc: &Document) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), opt(doc.id.as_ref()));
    m.insert("number".into(), opt(doc.number.as_ref()));
    m.insert("sum".into(), dec(doc.sum));
    m.insert("currency".into(), opt(doc.currency.as_ref()));
    m.insert("comment".into(), opt(doc.comment.as_ref()));
    let reqs: Array = doc
        .requisites
        .iter()
        .map(|r| {
            let mut x = Map::new();
            x.insert("name".into(), r.name.clone().into());
            x.insert("value".into(), opt(r.value.as_ref()));
            x.into()
        })
        .collect();
    m.insert("requisites".into(), reqs.into());
    let lines: Array = doc
        .lines
        .iter()
        .map(|l| {
            let mut x = Map::new();
            x.insert("id".into(), opt(l.id.as_ref()));
            x.insert("name".into(), opt(l.name.as_ref()));
            x.insert("sku".into(), opt(l.sku.as_ref()));
            x.insert("quantity".into(), dec(l.quantity));
            x.insert("price".into(), dec(l.unit_price()));
            x.insert("sum".into(), dec(l.sum));
            x.insert("service".into(), l.is_service().into());
            x.into()
        })
        .collect();
    m.insert("lines".into(), lines.into());
    m
}

fn text_of(map: &Map, key: &str) -> Option<String> {
    map.get(key)
        .filter(|v| !v.is_unit())
        .map(ToString::to_string)
}

fn decimal_of(map: &Map, key: &str) -> Result<Option<Decimal>, String> {
    match map.get(key).filter(|v| !v.is_unit()) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_string();
            Decimal::from_str(text.trim())
                .or_else(|_| Decimal::from_scientific(text.trim()))
                .map(Some)
                .map_err(|_| format!("{key} {text:?} is not a number"))
        }
    }
}

/// Writes the script's map back into the document: header texts, requisites, and lines
/// (existing lines matched by position and `id`; new ones built from their fields).
fn map_to_doc(map: &Map, doc: &mut Document) -> Result<(), String> {
    doc.comment = text_of(map, "comment");
    doc.requisites = array(map, "requisites")
        .iter()
        .map(|r| {
            let r = r
                .read_lock::<Map>()
                .ok_or("a requisite must be a map #{name, value}")?;
            let name = text_of(&r, "name").ok_or("a requisite needs a name")?;
            Ok(Requisite {
                name,
                value: text_of(&r, "value"),
            })
        })
        .collect::<Result<_, String>>()?;
    let old = std::mem::take(&mut doc.lines);
    for l in array(map, "lines") {
        let l = l.read_lock::<Map>().ok_or("a line must be a map")?;
        let id = text_of(&l, "id");
        let mut line = old
            .iter()
            .find(|o| o.id == id)
            .cloned()
            .unwrap_or_else(|| new_line(&l));
        line.id = id;
        line.name = text_of(&l, "name");
        line.sku = text_of(&l, "sku");
        line.quantity = decimal_of(&l, "quantity")?;
        let price = decimal_of(&l, "price")?;
        if line.price_per_unit.is_some() || line.price.is_none() {
            line.price_per_unit = price;
        } else {
            line.price = price;
        }
        line.sum = match decimal_of(&l, "sum")? {
            Some(s) => Some(s),
            None => match (line.quantity, price) {
                (Some(q), Some(p)) => Some(crate::export::money(q * p)),
                _ => None,
            },
        };
        doc.lines.push(line);
    }
    Ok(())
}

fn new_line(l: &Map) -> Line {
    let service = l
        .get("service")
        .and_then(|v| v.as_bool().ok())
        .unwrap_or(false);
    let kind = if service {
        t::ITEM_SERVICE
    } else {
        t::ITEM_GOODS
    };
    Line {
        unit: Some(Unit {
            code: Some(t::UNIT_PIECE_CODE.to_owned()),
            full_name: Some(t::UNIT_PIECE_FULL.to_owned()),
            short_name: Some(t::UNIT_PIECE_SHORT.to_owned()),
            international: Some(t::UNIT_PIECE_INTERNATIONAL.to_owned()),
            id: None,
        }),
        coefficient: Some(Decimal::ONE),
        requisites: vec![
            Requisite {
                name: t::REQ_ITEM_KIND.to_owned(),
                value: Some(kind.to_owned()),
            },
            Requisite {
                name: t::REQ_ITEM_TYPE.to_owned(),
                value: Some(kind.to_owned()),
            },
        ],
        ..Line::default()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use commerceml::SchemaVersion;

    use super::*;
    use crate::domain::{Customer, Item, OrderInput, Source};
    use crate::export::order_document;
    use crate::settings::ExchangeSettings;

    fn order() -> Order {
        let mut properties = std::collections::BTreeMap::new();
        properties.insert("utm_source".to_owned(), "yandex".to_owned());
        Order {
            id: 5,
            input: OrderInput {
                number: "A5".into(),
                created_at: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
                status: None,
                currency: None,
                customer: Customer::default(),
                delivery: None,
                payment: None,
                items: vec![Item {
                    sku: Some("S1".into()),
                    id_1c: None,
                    name: "Kettle".into(),
                    quantity: Decimal::from(2),
                    unit: None,
                    price: Decimal::new(150050, 2),
                    discount: None,
                    vat_rate: None,
                }],
                discounts: vec![],
                comment: None,
                properties,
            },
            status_1c: None,
            paid: false,
            shipped: false,
            cancelled: false,
            deleted: false,
            number_1c: None,
            date_1c: None,
            id_1c: None,
            payment_number_1c: None,
            payment_date_1c: None,
            shipment_number_1c: None,
            shipment_date_1c: None,
            version: 1,
            last_change_source: Source::Store,
            updated_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            history: vec![],
        }
    }

    fn doc(o: &Order) -> Document {
        order_document(o, &SchemaVersion::v2_05(), &ExchangeSettings::default())
    }

    #[test]
    fn adds_requisite_and_line_and_keeps_totals() {
        let hook = Hook::compile(
            "channel.rhai",
            r#"
            doc.set_requisite("Канал", order.properties.utm_source);
            doc.remove_requisite("Сайт");
            doc.add_line(#{ id: "GIFT_WRAP", name: "Gift wrap", quantity: "1", price: "99.90", service: true });
            "#,
            HookLimits::default(),
        )
        .unwrap();
        let o = order();
        let mut d = doc(&o);
        hook.on_export(&o, &mut d).unwrap();
        assert_eq!(d.requisite("Канал"), Some("yandex"));
        assert_eq!(d.requisite(t::REQ_SITE), None);
        assert_eq!(d.lines.len(), 2);
        assert!(d.lines[1].is_service());
        assert_eq!(d.lines[1].sum, Some(Decimal::new(9990, 2)));
        assert_eq!(d.sum, Some(Decimal::new(310090, 2)));
        assert_eq!(d.sum_matches(), Some(true));
        // The untouched line keeps its unit and requisites.
        assert_eq!(d.lines[0].unit_code(), Some("796"));
    }

    #[test]
    fn endless_loop_is_stopped_and_document_untouched() {
        let hook = Hook::compile(
            "loop.rhai",
            "doc.set_requisite(\"x\", \"y\");\nloop { }\n",
            HookLimits {
                max_operations: 100_000,
                timeout: Duration::from_secs(5),
            },
        )
        .unwrap();
        let o = order();
        let mut d = doc(&o);
        let before = d.clone();
        let err = hook.on_export(&o, &mut d).unwrap_err();
        assert_eq!(err.script, "loop.rhai");
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("stopped"), "{err}");
        assert_eq!(d, before);
    }

    #[test]
    fn time_limit_stops_slow_scripts() {
        let hook = Hook::compile(
            "slow.rhai",
            "let s = 0;\nloop { s += 1; }",
            HookLimits {
                max_operations: 0,
                timeout: Duration::from_millis(50),
            },
        )
        .unwrap();
        let o = order();
        let mut d = doc(&o);
        let err = hook.on_export(&o, &mut d).unwrap_err();
        assert!(err.message.contains("time limit"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = Hook::compile("bad.rhai", "let x = ;", HookLimits::default()).unwrap_err();
        assert_eq!(err.line, Some(1));
        let hook =
            Hook::compile("throw.rhai", "\n\nthrow \"nope\";", HookLimits::default()).unwrap();
        let mut d = Document::default();
        let err = hook.on_import(&mut d).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(
            err.to_string(),
            "hook throw.rhai line 3: Runtime error: nope"
        );
    }

    #[test]
    fn import_hook_rewrites_a_status_name() {
        let hook = Hook::compile(
            "import.rhai",
            r#"if doc.requisite("Статус заказа") == "Отгружен" { doc.set_requisite("Статус заказа", "Передан курьеру"); }"#,
            HookLimits::default(),
        )
        .unwrap();
        let mut d = Document::default();
        d.set_requisite(t::REQ_STATUS, "Отгружен");
        hook.on_import(&mut d).unwrap();
        assert_eq!(d.requisite(t::REQ_STATUS), Some("Передан курьеру"));
    }
}
