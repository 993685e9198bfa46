/* Display names of the ids the data carries: [English, Arabic]. Unknown ids are shown as they are. */
"use strict";
window.TAWASUL_LABELS = Object.freeze({
  channel: {
    call: ["Contact centre", "مركز الاتصال"],
    crm: ["CRM", "إدارة علاقات المتعاملين"],
    complaints_platform: ["04 platform", "منصة 04"],
    walk_in: ["Walk-in", "مراكز الخدمة"],
    email: ["E-mail", "البريد الإلكتروني"],
    web: ["Website", "الموقع الإلكتروني"],
    app: ["App", "التطبيق الذكي"],
    social: ["Social media", "وسائل التواصل الاجتماعي"],
    all: ["All channels", "جميع القنوات"],
  },
  queue: {
    general: ["General", "الاستفسارات العامة"],
    mosques: ["Mosques", "المساجد"],
    zakat: ["Zakat", "الزكاة"],
    quran_centres: ["Quran centres", "مراكز القرآن"],
  },
  centre: {
    main_building: ["Main building", "المبنى الرئيسي"],
    mbr_islamic_culture_centre: ["MBR Islamic culture centre", "مركز محمد بن راشد للثقافة الإسلامية"],
    mosque_engineering_building: ["Mosque engineering and care", "مبنى هندسة ورعاية المساجد"],
    maktoum_quran_centre: ["Maktoum Quran centre", "مركز مكتوم لتحفيظ القرآن"],
  },
  target: {
    first_response: ["first response", "الاستجابة الأولى"],
    resolution: ["resolution", "الحل"],
  },
});
