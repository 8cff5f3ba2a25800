//! Every CommerceML element, attribute and fixed value name, in one place.
//!
//! The rest of the code refers to these constants; the Russian spelling appears nowhere else.
#![allow(missing_docs)]

// Envelope.
pub const ROOT: &str = "КоммерческаяИнформация";
pub const ATTR_SCHEMA_VERSION: &str = "ВерсияСхемы";
pub const ATTR_GENERATED_AT: &str = "ДатаФормирования";
pub const ATTR_DATE_FORMAT: &str = "ФорматДаты";
pub const ATTR_TIME_FORMAT: &str = "ФорматВремени";
pub const ATTR_DATE_TIME_SEPARATOR: &str = "РазделительДатаВремя";
pub const ATTR_SUM_FORMAT: &str = "ФорматСуммы";
pub const ATTR_QUANTITY_FORMAT: &str = "ФорматКоличества";
/// The decimal-separator key inside `ФорматСуммы` / `ФорматКоличества` (`ЧРД=.`).
pub const FORMAT_DECIMAL_SEPARATOR_KEY: &str = "ЧРД=";
pub const CONTAINER: &str = "Контейнер";
pub const DOCUMENT: &str = "Документ";
pub const COUNTERPARTIES: &str = "Контрагенты";
pub const COUNTERPARTY: &str = "Контрагент";

// Document header.
pub const ID: &str = "Ид";
pub const NUMBER: &str = "Номер";
pub const NUMBER_1C: &str = "Номер1С";
pub const DATE: &str = "Дата";
pub const TIME: &str = "Время";
pub const DATE_1C: &str = "Дата1С";
pub const OPERATION: &str = "ХозОперация";
pub const ROLE: &str = "Роль";
pub const CURRENCY: &str = "Валюта";
pub const RATE: &str = "Курс";
pub const SUM: &str = "Сумма";
pub const VERSION: &str = "НомерВерсии";
pub const DELETION_MARK: &str = "ПометкаУдаления";
pub const BASIS: &str = "Основание";
pub const PAYMENT_DUE: &str = "СрокПлатежа";
pub const COMMENT: &str = "Комментарий";
pub const TAXES: &str = "Налоги";
pub const TAX: &str = "Налог";
pub const DISCOUNTS: &str = "Скидки";
pub const DISCOUNT: &str = "Скидка";
pub const WAREHOUSES: &str = "Склады";
pub const WAREHOUSE: &str = "Склад";
pub const LINES: &str = "Товары";
pub const LINE: &str = "Товар";
pub const REQUISITES: &str = "ЗначенияРеквизитов";
pub const REQUISITE: &str = "ЗначениеРеквизита";
pub const SUBORDINATES: &str = "ПодчиненныеДокументы";
pub const SUBORDINATE: &str = "ПодчиненныйДокумент";

// Counterparty.
pub const NAME: &str = "Наименование";
pub const FULL_NAME: &str = "ПолноеНаименование";
pub const OFFICIAL_NAME: &str = "ОфициальноеНаименование";
pub const LAST_NAME: &str = "Фамилия";
pub const FIRST_NAME: &str = "Имя";
pub const MIDDLE_NAME: &str = "Отчество";
pub const BIRTH_DATE: &str = "ДатаРождения";
pub const GENDER: &str = "Пол";
pub const INN: &str = "ИНН";
pub const KPP: &str = "КПП";
pub const OKPO: &str = "КодПоОКПО";
pub const REGISTRATION_ADDRESS: &str = "АдресРегистрации";
pub const LEGAL_ADDRESS: &str = "ЮридическийАдрес";
pub const ADDRESS: &str = "Адрес";
pub const PRESENTATION: &str = "Представление";
pub const ADDRESS_FIELD: &str = "АдресноеПоле";
pub const KIND: &str = "Тип";
pub const VALUE: &str = "Значение";
pub const CONTACTS: &str = "Контакты";
pub const CONTACT: &str = "Контакт";
pub const REPRESENTATIVES: &str = "Представители";
pub const REPRESENTATIVE: &str = "Представитель";
pub const RELATION: &str = "Отношение";
pub const BANK_ACCOUNTS: &str = "РасчетныеСчета";
pub const BANK_ACCOUNT: &str = "РасчетныйСчет";
pub const ACCOUNT_NUMBER: &str = "НомерСчета";
pub const BANK: &str = "Банк";
pub const BIC: &str = "БИК";
pub const CORRESPONDENT_ACCOUNT: &str = "СчетКорреспондентский";

// Lines.
pub const CATALOG_ID: &str = "ИдКаталога";
pub const SKU: &str = "Артикул";
pub const BASE_UNIT: &str = "БазоваяЕдиница";
pub const UNIT: &str = "Единица";
pub const UNIT_CODE: &str = "Код";
pub const UNIT_FULL_NAME: &str = "НаименованиеПолное";
pub const UNIT_SHORT_NAME: &str = "НаименованиеКраткое";
pub const UNIT_INTERNATIONAL: &str = "МеждународноеСокращение";
pub const COEFFICIENT: &str = "Коэффициент";
pub const PRICE_PER_UNIT: &str = "ЦенаЗаЕдиницу";
pub const PRICE: &str = "Цена";
pub const QUANTITY: &str = "Количество";
pub const TAX_RATES: &str = "СтавкиНалогов";
pub const TAX_RATE: &str = "СтавкаНалога";
pub const RATE_VALUE: &str = "Ставка";
pub const INCLUDED: &str = "УчтеноВСумме";
pub const PERCENT: &str = "Процент";

// Fixed values.
pub const ROLE_SELLER: &str = "Продавец";
pub const ROLE_BUYER: &str = "Покупатель";
pub const OP_ORDER: &str = "Заказ товара";
pub const OP_CASH_PAYMENT: &str = "Выплата наличных денег";
pub const OP_TRANSFER_PAYMENT: &str = "Выплата безналичных денег";
pub const OP_CARD_PAYMENT: &str = "Эквайринговая операция";
pub const OP_SHIPMENT: &str = "Отпуск товара";
pub const RELATION_CONTACT_PERSON: &str = "Контактное лицо";
pub const DELIVERY_LINE_ID: &str = "ORDER_DELIVERY";
pub const DELIVERY_LINE_NAME: &str = "Доставка заказа";
pub const ITEM_GOODS: &str = "Товар";
pub const ITEM_SERVICE: &str = "Услуга";
pub const UNIT_PIECE_CODE: &str = "796";
pub const UNIT_PIECE_FULL: &str = "Штука";
pub const UNIT_PIECE_SHORT: &str = "шт";
pub const UNIT_PIECE_INTERNATIONAL: &str = "PCE";
pub const DISCOUNT_ON_LINE: &str = "Скидка на товар";
pub const DISCOUNT_ON_ORDER: &str = "Скидка на заказ";
pub const TAX_VAT: &str = "НДС";
pub const CONTACT_PHONE_OLD: &str = "ТелефонРабочий";
pub const CONTACT_EMAIL_OLD: &str = "Почта";
pub const CONTACT_PHONE: &str = "Телефон рабочий";
pub const CONTACT_EMAIL: &str = "Электронная почта";

// Address field kinds.
pub const ADDR_POSTCODE: &str = "Почтовый индекс";
pub const ADDR_COUNTRY: &str = "Страна";
pub const ADDR_REGION: &str = "Регион";
pub const ADDR_CITY: &str = "Город";
pub const ADDR_STREET: &str = "Улица";
pub const ADDR_HOUSE: &str = "Дом";
pub const ADDR_FLAT: &str = "Квартира";

// Line requisites.
pub const REQ_ITEM_KIND: &str = "ВидНоменклатуры";
pub const REQ_ITEM_TYPE: &str = "ТипНоменклатуры";
pub const REQ_BASKET_POSITION: &str = "НомерПозицииКорзины";
pub const REQ_BASKET_PROPERTY_PREFIX: &str = "СвойствоКорзины#";

// Order requisites (traits), both directions.
pub const REQ_PAYMENT_DATE: &str = "Дата оплаты";
pub const REQ_PAYMENT_DOC_NUMBER: &str = "Номер платежного документа";
pub const REQ_DELIVERY_ALLOWED_DATE: &str = "Дата разрешения доставки";
pub const REQ_LAST_DELIVERY_ALLOWED_DATE: &str = "Дата последнего разрешения по доставке";
pub const REQ_DELIVERY_METHOD: &str = "Способ доставки";
pub const REQ_DELIVERY_METHOD_ID: &str = "Метод доставки ИД";
pub const REQ_PAYMENT_METHOD: &str = "Метод оплаты";
pub const REQ_PAYMENT_METHOD_ID: &str = "Метод оплаты ИД";
pub const REQ_ORDER_PAID: &str = "Заказ оплачен";
pub const REQ_DELIVERY_ALLOWED: &str = "Доставка разрешена";
pub const REQ_CANCELLED: &str = "Отменен";
pub const REQ_FINAL_STATUS: &str = "Финальный статус";
pub const REQ_STATUS: &str = "Статус заказа";
pub const REQ_STATUS_ID: &str = "Статуса заказа ИД";
pub const REQ_CANCEL_DATE: &str = "Дата отмены заказа";
pub const REQ_CANCEL_REASON: &str = "Причина отмены";
pub const REQ_STATUS_CHANGED_AT: &str = "Дата изменения статуса";
pub const REQ_BUYER_COMMENT: &str = "Комментарии покупателя";
pub const REQ_SITE: &str = "Сайт";
pub const REQ_DELIVERY_ADDRESS: &str = "Адрес доставки";
pub const REQ_NUMBER_1C: &str = "Номер по 1С";
pub const REQ_DATE_1C: &str = "Дата по 1С";
pub const REQ_POSTED: &str = "Проведен";
pub const REQ_DELETION_MARK: &str = "ПометкаУдаления";
pub const REQ_PAID: &str = "Оплачен";
pub const REQ_PAYMENT_NUMBER_1C: &str = "Номер оплаты по 1С";
pub const REQ_PAYMENT_DATE_1C: &str = "Дата оплаты по 1С";
pub const REQ_SHIPPED: &str = "Отгружен";
pub const REQ_SHIPMENT_NUMBER_1C: &str = "Номер отгрузки по 1С";
pub const REQ_SHIPMENT_DATE_1C: &str = "Дата отгрузки по 1С";
pub const REQ_TRACKING_NUMBER: &str = "Идентификатор отправления";

// mode=info lookup lists. The first letter of the statuses tag is a LATIN C in Bitrix.
pub const INFO_ROOT: &str = "Справочник";
pub const INFO_STATUSES: &str = "Cтатусы";
pub const INFO_PAYMENT_SYSTEMS: &str = "ПлатежныеСистемы";
pub const INFO_DELIVERY_SERVICES: &str = "СлужбыДоставки";
pub const INFO_ITEM: &str = "Элемент";
pub const INFO_NAME: &str = "Название";
pub const INFO_PAYMENT_TYPE: &str = "ТипОплаты";

// Root attribute values written by Bitrix.
pub const FORMAT_DATE: &str = "ДФ=yyyy-MM-dd; ДЛФ=DT";
pub const FORMAT_TIME: &str = "ДФ=ЧЧ:мм:сс; ДЛФ=T";
pub const FORMAT_SUM: &str = "ЧЦ=18; ЧДЦ=2; ЧРД=.";
pub const FORMAT_QUANTITY: &str = "ЧЦ=18; ЧДЦ=2; ЧРД=.";
pub const NAMESPACE_3: &str = "urn:1C.ru:commerceml_3";
pub const NAMESPACE_2: &str = "urn:1C.ru:commerceml_2";

// Names and enumerations of the published 2.10 XSD, used by the strict writer.
pub const XSD_OKPO: &str = "ОКПО";
pub const XSD_BANK_ACCOUNT: &str = "РасчетныйСчет";
pub const XSD_CONTACT_OTHER: &str = "Прочее";
pub const XSD_GENDERS: [&str; 2] = ["М", "Ж"];
pub const XSD_CONTACT_KINDS: [&str; 11] = [
    "Телефон внутренний",
    "Телефон рабочий",
    "Телефон мобильный",
    "Телефон домашний",
    "Пейджер",
    "Факс",
    "Почта",
    "ICQ",
    "ВебСайт",
    "Координаты на карте",
    "Прочее",
];
pub const XSD_ADDRESS_KINDS: [&str; 10] = [
    "Почтовый индекс",
    "Страна",
    "Регион",
    "Район",
    "Населенный пункт",
    "Город",
    "Улица",
    "Дом",
    "Корпус",
    "Квартира",
];
pub const XSD_ROLES: [&str; 8] = [
    "Продавец",
    "Покупатель",
    "Плательщик",
    "Получатель",
    "Комитент",
    "Комиссионер",
    "Лицензиар",
    "Лицензиат",
];
pub const XSD_OPERATIONS: [&str; 16] = [
    "Заказ товара",
    "Счет на оплату",
    "Отпуск товара",
    "Счет-фактура",
    "Возврат товара",
    "Передача товара на комиссию",
    "Возврат комиссионного товара",
    "Отчет о продажах комиссионного товара",
    "Отчет о списании комиссионного товара",
    "Выплата наличных денег",
    "Возврат наличных денег",
    "Выплата безналичных денег",
    "Возврат безналичных денег",
    "Переоценка товаров",
    "Передача прав",
    "Прочие",
];
