//! The 1C exchange over real HTTP on loopback against a real SQLite file.

mod common;

use common::{offered, order_json, status_doc, status_file, TestApp};

#[tokio::test]
async fn full_session_checkauth_init_query_success_file_import() {
    let t = TestApp::spawn().await;
    for n in ["1001", "1002"] {
        assert_eq!(t.post_order(&order_json(n, "N")).await.status(), 201);
    }
    // Not due: status D is not exported by default.
    assert_eq!(t.post_order(&order_json("1003", "D")).await.status(), 201);

    let mut onec = t.onec();
    let a = onec.checkauth().await;
    assert_eq!(a.status, 200);
    let lines = a.lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[1], "PHPSESSID");
    assert_eq!(lines[4], "");
    assert!(a
        .set_cookie
        .unwrap()
        .starts_with(&format!("PHPSESSID={};", lines[2])));
    assert_eq!(a.content_type, "text/plain; charset=windows-1251");

    let a = onec.init(Some("2.08")).await;
    let sessid = onec.sessid.clone().unwrap();
    assert_eq!(
        a.text(),
        format!("zip=yes\nfile_limit=204800\nsessid={sessid}\nversion=2.09")
    );

    let q = onec.query().await;
    assert_eq!(q.status, 200);
    assert_eq!(q.content_type, "application/xml; charset=windows-1251");
    assert!(q
        .bytes
        .starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    assert!(
        std::str::from_utf8(&q.bytes).is_err(),
        "bytes are windows-1251"
    );
    let text = q.text();
    assert!(text.contains("ВерсияСхемы=\"2.08\""), "{text}");
    assert!(text.contains("Чайник"));
    let got = offered(&q);
    let numbers: Vec<&str> = got.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(numbers, ["1001", "1002"]);

    assert_eq!(onec.success().await.text(), "success\n");
    let empty = onec.query().await;
    assert!(offered(&empty).is_empty());
    assert!(empty.text().contains("КоммерческаяИнформация"));

    // 1C sends a status back in the new protocol: file, then import.
    let file = status_file(
        &[status_doc(
            "1001",
            &[("Статуса заказа ИД", "P"), ("Номер по 1С", "УТ-17")],
        )],
        "UTF-8",
    );
    assert_eq!(onec.file("orders.xml", &file).await.text(), "success\n");
    assert_eq!(onec.import("orders.xml").await.text(), "success\n");
    let o = t.order("1001").await;
    assert_eq!(o["status"], "P");
    assert_eq!(o["number_1c"], "УТ-17");
    let history = o["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["source"], "1c");
    assert_eq!(history.last().unwrap()["status"], "P");

    // The journal has the session with its requests.
    let s = t.sessions().await;
    let modes: Vec<&str> = s["sessions"][0]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        [
            "checkauth",
            "init",
            "query",
            "success",
            "query",
            "file",
            "import"
        ]
    );
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("obmen_orders_exported_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("obmen_documents_imported_total 1\n"),
        "{metrics}"
    );
    t.stop().await;
}

#[tokio::test]
async fn interrupted_session_offers_the_same_orders_until_success() {
    let t = TestApp::spawn().await;
    for n in ["A-1", "A-2", "A-3"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let mut onec = t.onec();
    onec.start().await;
    let first = offered(&onec.query().await);
    assert_eq!(first.len(), 3);
    // 1C crashed: no success. A new run offers the same orders with the same ids.
    let mut again = t.onec();
    again.start().await;
    let second = offered(&again.query().await);
    assert_eq!(first, second);
    assert_eq!(again.success().await.text(), "success\n");
    let mut third = t.onec();
    third.start().await;
    assert!(offered(&third.query().await).is_empty());
    // A store change makes the order due again, with the same Ид.
    let mut body = order_json("A-2", "P");
    body["comment"] = "changed".into();
    assert_eq!(t.post_order(&body).await.status(), 200);
    let fourth = offered(&third.query().await);
    assert_eq!(fourth, vec![first[1].clone()]);
}

#[tokio::test]
async fn changes_from_1c_are_not_echoed_back() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("E-1", "N")).await;
    let mut onec = t.onec();
    onec.start().await;
    assert_eq!(offered(&onec.query().await).len(), 1);
    onec.success().await;
    // 1C moves the order to P, an exported status: it must not come back.
    let file = status_file(
        &[status_doc("E-1", &[("Статус заказа", "В работе")])],
        "UTF-8",
    );
    onec.file("orders.xml", &file).await;
    assert_eq!(onec.import("orders.xml").await.text(), "success\n");
    assert_eq!(t.order("E-1").await["status"], "P");
    assert!(offered(&onec.query().await).is_empty());
}

#[tokio::test]
async fn status_file_with_name_code_and_unmapped_status() {
    let t = TestApp::spawn().await;
    for n in ["S-1", "S-2", "S-3"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let mut onec = t.onec();
    onec.start().await;
    let file = status_file(
        &[
            status_doc("S-1", &[("Статус заказа", "  готов к  ОТГРУЗКЕ ")]),
            status_doc("S-2", &[("Статуса заказа ИД", "F")]),
            status_doc(
                "S-3",
                &[
                    ("Статус заказа", "Отгружен"),
                    ("Оплачен", "true"),
                    ("Номер оплаты по 1С", "ПЛ-5"),
                    ("Отменен", "false"),
                ],
            ),
            status_doc("NOPE-9", &[("Статуса заказа ИД", "P")]),
        ],
        "UTF-8",
    );
    onec.file("documents.xml", &file).await;
    let a = onec.import("documents.xml").await;
    insta::assert_snapshot!(a.text(), @r#"
    success
    Unknown status "Отгружен" for order S-3
    Order NOPE-9 not found
    "#);
    assert_eq!(t.order("S-1").await["status"], "D");
    assert_eq!(t.order("S-2").await["status"], "F");
    let s3 = t.order("S-3").await;
    assert_eq!(s3["status"], "N", "an unmapped status changes nothing");
    assert_eq!(s3["paid"], true, "the other facts are applied");
    assert_eq!(s3["payment_number_1c"], "ПЛ-5");
    let journal = t.sessions().await;
    let import = journal["sessions"][0]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mode"] == "import")
        .unwrap()
        .clone();
    assert_eq!(import["documents"], 4);
    assert_eq!(
        import["messages"],
        serde_json::json!([
            "Unknown status \"Отгружен\" for order S-3",
            "Order NOPE-9 not found"
        ])
    );
}

#[tokio::test]
async fn the_same_file_imported_twice_changes_nothing() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("I-1", "N")).await;
    let file = status_file(
        &[status_doc(
            "I-1",
            &[("Статуса заказа ИД", "D"), ("Отгружен", "true")],
        )],
        "UTF-8",
    );
    let mut onec = t.onec();
    onec.start().await;
    onec.file("orders.xml", &file).await;
    onec.import("orders.xml").await;
    let after_first = t.order("I-1").await;
    assert_eq!(after_first["status"], "D");
    assert_eq!(after_first["shipped"], true);
    let mut onec = t.onec();
    onec.start().await;
    onec.file("orders.xml", &file).await;
    assert_eq!(onec.import("orders.xml").await.text(), "success\n");
    let after_second = t.order("I-1").await;
    assert_eq!(after_first, after_second);
}

#[tokio::test]
async fn a_file_uploaded_in_three_chunks() {
    let t = TestApp::spawn_with(|c| c.exchange.file_limit = 400).await;
    for n in ["C-1", "C-2", "C-3"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let docs: Vec<String> = ["C-1", "C-2", "C-3"]
        .iter()
        .map(|n| status_doc(n, &[("Статуса заказа ИД", "FF")]))
        .collect();
    let file = status_file(&docs, "UTF-8");
    let mut onec = t.onec();
    onec.checkauth().await;
    let init = onec.init(Some("2.08")).await;
    assert!(init.text().starts_with("zip=yes\nfile_limit=400\n"));
    let third = file.len() / 3 + 1;
    let chunks: Vec<&[u8]> = file.chunks(third).collect();
    assert_eq!(chunks.len(), 3);
    for c in &chunks {
        assert_eq!(onec.file("documents___1.xml", c).await.text(), "success\n");
    }
    assert_eq!(t.order("C-1").await["status"], "N", "nothing before import");
    assert_eq!(onec.import("documents___1.xml").await.text(), "success\n");
    for n in ["C-1", "C-2", "C-3"] {
        assert_eq!(t.order(n).await["status"], "FF");
    }
}

#[tokio::test]
async fn a_zipped_file_is_unpacked_and_imported() {
    use std::io::Write as _;
    let t = TestApp::spawn().await;
    t.post_order(&order_json("Z-1", "N")).await;
    let xml = status_file(&[status_doc("Z-1", &[("Статуса заказа ИД", "C")])], "UTF-8");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("orders.xml", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(&xml).unwrap();
    let archive = zip.finish().unwrap().into_inner();
    let mut onec = t.onec();
    onec.start().await;
    // Two chunks of the archive, then import of the file inside it.
    let (a, b) = archive.split_at(archive.len() / 2);
    onec.file("v8_3B8F_3e.zip", a).await;
    onec.file("v8_3B8F_3e.zip", b).await;
    assert_eq!(onec.import("orders.xml").await.text(), "success\n");
    assert_eq!(t.order("Z-1").await["status"], "C");
}

#[tokio::test]
async fn windows_1251_and_utf8_uploads_read_alike() {
    let t = TestApp::spawn().await;
    for n in ["W-1", "U-1"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let mut onec = t.onec();
    onec.start().await;
    let cp = status_file(
        &[status_doc("W-1", &[("Статус заказа", "Передан курьеру")])],
        "windows-1251",
    );
    assert!(std::str::from_utf8(&cp).is_err());
    onec.file("cp.xml", &cp).await;
    assert_eq!(onec.import("cp.xml").await.text(), "success\n");
    let mut utf8 = b"\xEF\xBB\xBF".to_vec();
    utf8.extend(status_file(
        &[status_doc("U-1", &[("Статус заказа", "Передан курьеру")])],
        "UTF-8",
    ));
    onec.file("utf.xml", &utf8).await;
    assert_eq!(onec.import("utf.xml").await.text(), "success\n");
    assert_eq!(t.order("W-1").await["status"], "F");
    assert_eq!(t.order("U-1").await["status"], "F");
    assert_eq!(t.order("W-1").await["status_1c"], "Передан курьеру");
}

#[tokio::test]
async fn legacy_protocol_imports_at_file_time() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("L-1", "N")).await;
    let mut onec = t.onec();
    onec.checkauth().await;
    let a = onec.init(None).await;
    assert_eq!(a.text(), "zip=yes\nfile_limit=204800\n");
    let file = status_file(
        &[status_doc("L-1", &[("Статус заказа", "Неведомый")])],
        "UTF-8",
    );
    let (head, tail) = file.split_at(file.len() / 2);
    // The first half alone is incomplete: accepted, nothing applied yet.
    assert_eq!(onec.file("orders.xml", head).await.text(), "success\n");
    let a = onec.file("orders.xml", tail).await;
    assert_eq!(
        a.text(),
        "success\nUnknown status \"Неведомый\" for order L-1\n"
    );
    // The reply is windows-1251 like every text reply.
    assert!(std::str::from_utf8(&a.bytes).is_err());
}

#[tokio::test]
async fn wrong_credentials_unknown_modes_and_bad_names_fail_with_200() {
    let t = TestApp::spawn().await;
    let url = t.url("/1c_exchange.php?type=sale&mode=checkauth");
    let r = t
        .http
        .get(&url)
        .basic_auth("1c", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    insta::assert_snapshot!(r.text().await.unwrap(), @r"
    failure
    Authorization failed: wrong login or password.
    ");
    let r = t.http.get(&url).send().await.unwrap();
    assert!(r.text().await.unwrap().starts_with("failure\n"));

    let mut onec = t.onec();
    onec.checkauth().await;
    assert_eq!(
        onec.get("mode=deactivate").await.text(),
        "failure\nUnknown command.\n"
    );
    let a = onec.file("../../etc/passwd", b"x").await;
    assert_eq!(a.status, 200);
    assert!(
        a.text().starts_with("failure\nBad file name"),
        "{}",
        a.text()
    );
    assert_eq!(
        onec.import("missing.xml").await.text(),
        "failure\nFile for import is empty: missing.xml.\n"
    );
    let r = t
        .http
        .get(t.url("/bitrix/admin/1c_exchange.php?type=catalog&mode=init"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "failure\nUnknown command type.\n");
    // A wrong sessid is refused; once seen, sessid is required.
    let mut bad = t.onec();
    bad.checkauth().await;
    bad.sessid = Some("0".repeat(32));
    assert!(bad
        .query()
        .await
        .text()
        .starts_with("failure\nRequest source check failed"));
    onec.send_sessid = false;
    assert!(onec
        .query()
        .await
        .text()
        .starts_with("failure\nRequest source check failed"));
}

#[tokio::test]
async fn info_lists_statuses_with_the_latin_c() {
    let t = TestApp::spawn().await;
    let mut onec = t.onec();
    onec.checkauth().await;
    let a = onec.get("mode=info").await;
    assert_eq!(a.content_type, "application/xml; charset=windows-1251");
    // `Cтатусы`: Latin C (0x43) then Cyrillic in windows-1251.
    assert!(a
        .bytes
        .windows(8)
        .any(|w| w == b"<C\xf2\xe0\xf2\xf3\xf1\xfb"));
    insta::assert_snapshot!(a.text(), @r#"
    <?xml version="1.0" encoding="windows-1251"?>
    <Справочник>
    <Cтатусы>
    <Элемент><Ид>N</Ид><Название>Принят, ожидается оплата</Название></Элемент>
    <Элемент><Ид>P</Ид><Название>Принят, передан в обработку</Название></Элемент>
    <Элемент><Ид>D</Ид><Название>Собирается, готов к отгрузке</Название></Элемент>
    <Элемент><Ид>F</Ид><Название>Передан в доставку</Название></Элемент>
    <Элемент><Ид>FF</Ид><Название>Доставлен, выполнен</Название></Элемент>
    <Элемент><Ид>C</Ид><Название>Отменен</Название></Элемент>
    </Cтатусы>
    <ПлатежныеСистемы>
    </ПлатежныеСистемы>
    <СлужбыДоставки>
    </СлужбыДоставки>
    </Справочник>
    "#);
}

#[tokio::test]
async fn schema_3_wraps_each_order_in_a_container() {
    let t = TestApp::spawn_with(|c| c.exchange.encoding = exchange::settings::Encoding::Utf8).await;
    t.post_order(&order_json("K-1", "N")).await;
    let mut onec = t.onec();
    onec.checkauth().await;
    onec.init(Some("3.1")).await;
    let q = onec.query().await;
    assert_eq!(q.content_type, "application/xml; charset=utf-8");
    assert!(
        q.bytes
            .starts_with(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{:?}",
        &q.bytes[..60]
    );
    let text = q.text();
    assert!(text.contains("<Контейнер>"), "{text}");
    assert_eq!(offered(&q).len(), 1);
}

#[tokio::test]
async fn a_large_import_answers_progress_until_done() {
    let t = TestApp::spawn_with(|c| c.pacing.import_slice_items = 2).await;
    let numbers = ["G-1", "G-2", "G-3", "G-4", "G-5"];
    for n in numbers {
        t.post_order(&order_json(n, "N")).await;
    }
    let docs: Vec<String> = numbers
        .iter()
        .map(|n| {
            let status = if *n == "G-3" {
                "Потерян"
            } else {
                "Выполнен"
            };
            status_doc(n, &[("Статус заказа", status)])
        })
        .collect();
    let mut onec = t.onec();
    onec.start().await;
    onec.file("big.xml", &status_file(&docs, "UTF-8")).await;
    let mut replies = Vec::new();
    for _ in 0..10 {
        let a = onec.import("big.xml").await.text();
        let done = a.starts_with("success\n");
        replies.push(a);
        if done {
            break;
        }
    }
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(replies[0].starts_with("progress\n") && replies[1].starts_with("progress\n"));
    assert_eq!(
        replies[2],
        "success\nUnknown status \"Потерян\" for order G-3\n"
    );
    for n in numbers {
        let expected = if n == "G-3" { "N" } else { "FF" };
        assert_eq!(t.order(n).await["status"], expected, "{n}");
    }
    // Asking again for a finished file gives the same answer and applies nothing twice.
    assert_eq!(onec.import("big.xml").await.text(), replies[2]);
}

#[tokio::test]
async fn files_never_imported_are_applied_when_the_next_run_starts() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("Q-1", "N")).await;
    let mut onec = t.onec();
    onec.start().await;
    let file = status_file(&[status_doc("Q-1", &[("Статуса заказа ИД", "F")])], "UTF-8");
    onec.file("documents.xml", &file).await;
    // No `import`: 1C ended the run.
    assert_eq!(t.order("Q-1").await["status"], "N");
    let mut next = t.onec();
    next.checkauth().await;
    assert_eq!(t.order("Q-1").await["status"], "F");
}

#[tokio::test]
async fn two_sessions_at_once_confirm_only_what_each_was_offered() {
    let t = TestApp::spawn().await;
    for n in ["T-1", "T-2"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let mut a = t.onec();
    a.start().await;
    assert_eq!(offered(&a.query().await).len(), 2);
    t.post_order(&order_json("T-3", "N")).await;
    let mut b = t.onec();
    b.start().await;
    assert_eq!(offered(&b.query().await).len(), 3);
    assert_eq!(a.success().await.text(), "success\n");
    let rest: Vec<String> = offered(&b.query().await)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(rest, ["T-3"]);
    b.success().await;
    assert!(offered(&b.query().await).is_empty());
}

/// A 1C→site 3.1 file shaped like the Bitrix exchange module's output: one `Контейнер` per
/// order, `Номер1С` blank-padded, shipment traits.
fn container_file() -> Vec<u8> {
    let doc = |n: &str, n1c: &str, shipped: bool, shipment: &str| {
        let mut reqs = format!(
            "<ЗначениеРеквизита><Наименование>Проведен</Наименование><Значение>true</Значение></ЗначениеРеквизита>\
             <ЗначениеРеквизита><Наименование>Отменен</Наименование><Значение>false</Значение></ЗначениеРеквизита>\
             <ЗначениеРеквизита><Наименование>Отгружен</Наименование><Значение>{shipped}</Значение></ЗначениеРеквизита>"
        );
        if shipped {
            reqs.push_str(&format!(
                "<ЗначениеРеквизита><Наименование>Номер отгрузки по 1С</Наименование><Значение>{shipment}</Значение></ЗначениеРеквизита>\
                 <ЗначениеРеквизита><Наименование>Дата отгрузки по 1С</Наименование><Значение>2017-08-02T18:36:44</Значение></ЗначениеРеквизита>"
            ));
        }
        format!(
            "<Контейнер><Документ><Ид>{n}</Ид><НомерВерсии>AAAAAQAAAAE=</НомерВерсии>\
             <ПометкаУдаления>false</ПометкаУдаления><Номер>{n}</Номер><Дата>2017-08-01</Дата>\
             <Номер1С>{n1c}</Номер1С><Дата1С>2017-08-01</Дата1С><ХозОперация>Заказ товара</ХозОперация>\
             <Роль>Продавец</Роль><Валюта>руб</Валюта><Курс>1</Курс><Сумма>3299.7</Сумма>\
             <ЗначенияРеквизитов>{reqs}</ЗначенияРеквизитов></Документ></Контейнер>\n"
        )
    };
    let mut out = b"\xEF\xBB\xBF".to_vec();
    out.extend(
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация \
             xmlns=\"urn:1C.ru:commerceml_3\" ВерсияСхемы=\"3.1\" ДатаФормирования=\"2017-08-04T12:20:00\">\n{}{}</КоммерческаяИнформация>\n",
            doc("319", "L319       ", false, ""),
            doc("479", "L479       ", true, "О0000000966"),
        )
        .into_bytes(),
    );
    out
}

#[tokio::test]
async fn a_1c_file_in_3_1_containers_is_applied() {
    let t = TestApp::spawn().await;
    for n in ["319", "479"] {
        assert_eq!(t.post_order(&order_json(n, "N")).await.status(), 201);
    }
    let mut onec = t.onec();
    onec.checkauth().await;
    onec.init(Some("3.1")).await;
    onec.file("documents___1.xml", &container_file()).await;
    assert_eq!(onec.import("documents___1.xml").await.text(), "success\n");
    let o479 = t.order("479").await;
    assert_eq!(o479["shipped"], true);
    assert_eq!(o479["shipment_number_1c"], "О0000000966");
    assert_eq!(o479["number_1c"], "L479");
    let o319 = t.order("319").await;
    assert_eq!(o319["shipped"], false);
    assert_eq!(o319["number_1c"], "L319");
    assert_eq!(o319["status"], "N");
}

#[tokio::test]
async fn basic_auth_without_cookie_continues_the_latest_session() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("B-1", "N")).await;
    let mut onec = t.onec();
    onec.checkauth().await;
    // An old 1C build: no cookie, no sessid, Basic on every request.
    onec.cookie = None;
    onec.send_sessid = false;
    assert_eq!(onec.init(None).await.text(), "zip=yes\nfile_limit=204800\n");
    // `mode=query` in a POST form body, as Bitrix accepts it.
    let form = onec
        .http
        .post(format!("{}?type=sale", onec.base))
        .basic_auth(common::USER, Some(common::PASSWORD))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("mode=query")
        .send()
        .await
        .unwrap();
    let charset = form.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(charset, "application/xml; charset=windows-1251");
    let body = form.bytes().await.unwrap();
    assert!(body.starts_with(b"<?xml"));
    assert_eq!(onec.success().await.text(), "success\n");
    assert!(offered(&onec.query().await).is_empty());
}
