//! GB/T 2260 administrative division codes.
//!
//! Only the provincial and prefecture levels are kept: the service validates
//! where a subscriber is registered, and county codes change far too often
//! to be worth shipping. The prefecture list follows the Ministry of Civil
//! Affairs publication of December 2023 (333 prefecture-level divisions).

/// A provincial-level division (province, autonomous region, municipality or
/// special administrative region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Province {
    /// Two-digit code, e.g. `"37"`.
    pub code: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
}

/// A prefecture-level division, or one of the groupings GB/T 2260 uses in
/// its place (municipal districts, province-administered counties, and the
/// single code of Taiwan, Hong Kong and Macau).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct City {
    /// Six-digit code, e.g. `"370100"`.
    pub code: &'static str,
    pub name_zh: &'static str,
}

// Short constructors keep the tables one entry per line.
const fn prov(code: &'static str, name_zh: &'static str, name_en: &'static str) -> Province {
    Province {
        code,
        name_zh,
        name_en,
    }
}

const fn entry(code: &'static str, name_zh: &'static str) -> City {
    City { code, name_zh }
}

/// All 34 provincial-level divisions, sorted by code (lookups binary-search).
pub static PROVINCES: &[Province] = &[
    prov("11", "北京市", "Beijing"),
    prov("12", "天津市", "Tianjin"),
    prov("13", "河北省", "Hebei"),
    prov("14", "山西省", "Shanxi"),
    prov("15", "内蒙古自治区", "Inner Mongolia"),
    prov("21", "辽宁省", "Liaoning"),
    prov("22", "吉林省", "Jilin"),
    prov("23", "黑龙江省", "Heilongjiang"),
    prov("31", "上海市", "Shanghai"),
    prov("32", "江苏省", "Jiangsu"),
    prov("33", "浙江省", "Zhejiang"),
    prov("34", "安徽省", "Anhui"),
    prov("35", "福建省", "Fujian"),
    prov("36", "江西省", "Jiangxi"),
    prov("37", "山东省", "Shandong"),
    prov("41", "河南省", "Henan"),
    prov("42", "湖北省", "Hubei"),
    prov("43", "湖南省", "Hunan"),
    prov("44", "广东省", "Guangdong"),
    prov("45", "广西壮族自治区", "Guangxi"),
    prov("46", "海南省", "Hainan"),
    prov("50", "重庆市", "Chongqing"),
    prov("51", "四川省", "Sichuan"),
    prov("52", "贵州省", "Guizhou"),
    prov("53", "云南省", "Yunnan"),
    prov("54", "西藏自治区", "Tibet"),
    prov("61", "陕西省", "Shaanxi"),
    prov("62", "甘肃省", "Gansu"),
    prov("63", "青海省", "Qinghai"),
    prov("64", "宁夏回族自治区", "Ningxia"),
    prov("65", "新疆维吾尔自治区", "Xinjiang"),
    prov("71", "台湾省", "Taiwan"),
    prov("81", "香港特别行政区", "Hong Kong"),
    prov("82", "澳门特别行政区", "Macau"),
];

/// Every prefecture-level code, sorted by code (lookups binary-search).
pub static CITIES: &[City] = &[
    // 11 Beijing
    entry("110100", "市辖区"),
    // 12 Tianjin
    entry("120100", "市辖区"),
    // 13 Hebei
    entry("130100", "石家庄市"),
    entry("130200", "唐山市"),
    entry("130300", "秦皇岛市"),
    entry("130400", "邯郸市"),
    entry("130500", "邢台市"),
    entry("130600", "保定市"),
    entry("130700", "张家口市"),
    entry("130800", "承德市"),
    entry("130900", "沧州市"),
    entry("131000", "廊坊市"),
    entry("131100", "衡水市"),
    // 14 Shanxi
    entry("140100", "太原市"),
    entry("140200", "大同市"),
    entry("140300", "阳泉市"),
    entry("140400", "长治市"),
    entry("140500", "晋城市"),
    entry("140600", "朔州市"),
    entry("140700", "晋中市"),
    entry("140800", "运城市"),
    entry("140900", "忻州市"),
    entry("141000", "临汾市"),
    entry("141100", "吕梁市"),
    // 15 Inner Mongolia
    entry("150100", "呼和浩特市"),
    entry("150200", "包头市"),
    entry("150300", "乌海市"),
    entry("150400", "赤峰市"),
    entry("150500", "通辽市"),
    entry("150600", "鄂尔多斯市"),
    entry("150700", "呼伦贝尔市"),
    entry("150800", "巴彦淖尔市"),
    entry("150900", "乌兰察布市"),
    entry("152200", "兴安盟"),
    entry("152500", "锡林郭勒盟"),
    entry("152900", "阿拉善盟"),
    // 21 Liaoning
    entry("210100", "沈阳市"),
    entry("210200", "大连市"),
    entry("210300", "鞍山市"),
    entry("210400", "抚顺市"),
    entry("210500", "本溪市"),
    entry("210600", "丹东市"),
    entry("210700", "锦州市"),
    entry("210800", "营口市"),
    entry("210900", "阜新市"),
    entry("211000", "辽阳市"),
    entry("211100", "盘锦市"),
    entry("211200", "铁岭市"),
    entry("211300", "朝阳市"),
    entry("211400", "葫芦岛市"),
    // 22 Jilin
    entry("220100", "长春市"),
    entry("220200", "吉林市"),
    entry("220300", "四平市"),
    entry("220400", "辽源市"),
    entry("220500", "通化市"),
    entry("220600", "白山市"),
    entry("220700", "松原市"),
    entry("220800", "白城市"),
    entry("222400", "延边朝鲜族自治州"),
    // 23 Heilongjiang
    entry("230100", "哈尔滨市"),
    entry("230200", "齐齐哈尔市"),
    entry("230300", "鸡西市"),
    entry("230400", "鹤岗市"),
    entry("230500", "双鸭山市"),
    entry("230600", "大庆市"),
    entry("230700", "伊春市"),
    entry("230800", "佳木斯市"),
    entry("230900", "七台河市"),
    entry("231000", "牡丹江市"),
    entry("231100", "黑河市"),
    entry("231200", "绥化市"),
    entry("232700", "大兴安岭地区"),
    // 31 Shanghai
    entry("310100", "市辖区"),
    // 32 Jiangsu
    entry("320100", "南京市"),
    entry("320200", "无锡市"),
    entry("320300", "徐州市"),
    entry("320400", "常州市"),
    entry("320500", "苏州市"),
    entry("320600", "南通市"),
    entry("320700", "连云港市"),
    entry("320800", "淮安市"),
    entry("320900", "盐城市"),
    entry("321000", "扬州市"),
    entry("321100", "镇江市"),
    entry("321200", "泰州市"),
    entry("321300", "宿迁市"),
    // 33 Zhejiang
    entry("330100", "杭州市"),
    entry("330200", "宁波市"),
    entry("330300", "温州市"),
    entry("330400", "嘉兴市"),
    entry("330500", "湖州市"),
    entry("330600", "绍兴市"),
    entry("330700", "金华市"),
    entry("330800", "衢州市"),
    entry("330900", "舟山市"),
    entry("331000", "台州市"),
    entry("331100", "丽水市"),
    // 34 Anhui (341400 Chaohu was abolished in 2011)
    entry("340100", "合肥市"),
    entry("340200", "芜湖市"),
    entry("340300", "蚌埠市"),
    entry("340400", "淮南市"),
    entry("340500", "马鞍山市"),
    entry("340600", "淮北市"),
    entry("340700", "铜陵市"),
    entry("340800", "安庆市"),
    entry("341000", "黄山市"),
    entry("341100", "滁州市"),
    entry("341200", "阜阳市"),
    entry("341300", "宿州市"),
    entry("341500", "六安市"),
    entry("341600", "亳州市"),
    entry("341700", "池州市"),
    entry("341800", "宣城市"),
    // 35 Fujian
    entry("350100", "福州市"),
    entry("350200", "厦门市"),
    entry("350300", "莆田市"),
    entry("350400", "三明市"),
    entry("350500", "泉州市"),
    entry("350600", "漳州市"),
    entry("350700", "南平市"),
    entry("350800", "龙岩市"),
    entry("350900", "宁德市"),
    // 36 Jiangxi
    entry("360100", "南昌市"),
    entry("360200", "景德镇市"),
    entry("360300", "萍乡市"),
    entry("360400", "九江市"),
    entry("360500", "新余市"),
    entry("360600", "鹰潭市"),
    entry("360700", "赣州市"),
    entry("360800", "吉安市"),
    entry("360900", "宜春市"),
    entry("361000", "抚州市"),
    entry("361100", "上饶市"),
    // 37 Shandong (371200 Laiwu was merged into Jinan in 2019)
    entry("370100", "济南市"),
    entry("370200", "青岛市"),
    entry("370300", "淄博市"),
    entry("370400", "枣庄市"),
    entry("370500", "东营市"),
    entry("370600", "烟台市"),
    entry("370700", "潍坊市"),
    entry("370800", "济宁市"),
    entry("370900", "泰安市"),
    entry("371000", "威海市"),
    entry("371100", "日照市"),
    entry("371300", "临沂市"),
    entry("371400", "德州市"),
    entry("371500", "聊城市"),
    entry("371600", "滨州市"),
    entry("371700", "菏泽市"),
    // 41 Henan
    entry("410100", "郑州市"),
    entry("410200", "开封市"),
    entry("410300", "洛阳市"),
    entry("410400", "平顶山市"),
    entry("410500", "安阳市"),
    entry("410600", "鹤壁市"),
    entry("410700", "新乡市"),
    entry("410800", "焦作市"),
    entry("410900", "濮阳市"),
    entry("411000", "许昌市"),
    entry("411100", "漯河市"),
    entry("411200", "三门峡市"),
    entry("411300", "南阳市"),
    entry("411400", "商丘市"),
    entry("411500", "信阳市"),
    entry("411600", "周口市"),
    entry("411700", "驻马店市"),
    entry("419000", "省直辖县级行政区划"),
    // 42 Hubei
    entry("420100", "武汉市"),
    entry("420200", "黄石市"),
    entry("420300", "十堰市"),
    entry("420500", "宜昌市"),
    entry("420600", "襄阳市"),
    entry("420700", "鄂州市"),
    entry("420800", "荆门市"),
    entry("420900", "孝感市"),
    entry("421000", "荆州市"),
    entry("421100", "黄冈市"),
    entry("421200", "咸宁市"),
    entry("421300", "随州市"),
    entry("422800", "恩施土家族苗族自治州"),
    entry("429000", "省直辖县级行政区划"),
    // 43 Hunan
    entry("430100", "长沙市"),
    entry("430200", "株洲市"),
    entry("430300", "湘潭市"),
    entry("430400", "衡阳市"),
    entry("430500", "邵阳市"),
    entry("430600", "岳阳市"),
    entry("430700", "常德市"),
    entry("430800", "张家界市"),
    entry("430900", "益阳市"),
    entry("431000", "郴州市"),
    entry("431100", "永州市"),
    entry("431200", "怀化市"),
    entry("431300", "娄底市"),
    entry("433100", "湘西土家族苗族自治州"),
    // 44 Guangdong
    entry("440100", "广州市"),
    entry("440200", "韶关市"),
    entry("440300", "深圳市"),
    entry("440400", "珠海市"),
    entry("440500", "汕头市"),
    entry("440600", "佛山市"),
    entry("440700", "江门市"),
    entry("440800", "湛江市"),
    entry("440900", "茂名市"),
    entry("441200", "肇庆市"),
    entry("441300", "惠州市"),
    entry("441400", "梅州市"),
    entry("441500", "汕尾市"),
    entry("441600", "河源市"),
    entry("441700", "阳江市"),
    entry("441800", "清远市"),
    entry("441900", "东莞市"),
    entry("442000", "中山市"),
    entry("445100", "潮州市"),
    entry("445200", "揭阳市"),
    entry("445300", "云浮市"),
    // 45 Guangxi
    entry("450100", "南宁市"),
    entry("450200", "柳州市"),
    entry("450300", "桂林市"),
    entry("450400", "梧州市"),
    entry("450500", "北海市"),
    entry("450600", "防城港市"),
    entry("450700", "钦州市"),
    entry("450800", "贵港市"),
    entry("450900", "玉林市"),
    entry("451000", "百色市"),
    entry("451100", "贺州市"),
    entry("451200", "河池市"),
    entry("451300", "来宾市"),
    entry("451400", "崇左市"),
    // 46 Hainan
    entry("460100", "海口市"),
    entry("460200", "三亚市"),
    entry("460300", "三沙市"),
    entry("460400", "儋州市"),
    entry("469000", "省直辖县级行政区划"),
    // 50 Chongqing
    entry("500100", "市辖区"),
    entry("500200", "县"),
    // 51 Sichuan
    entry("510100", "成都市"),
    entry("510300", "自贡市"),
    entry("510400", "攀枝花市"),
    entry("510500", "泸州市"),
    entry("510600", "德阳市"),
    entry("510700", "绵阳市"),
    entry("510800", "广元市"),
    entry("510900", "遂宁市"),
    entry("511000", "内江市"),
    entry("511100", "乐山市"),
    entry("511300", "南充市"),
    entry("511400", "眉山市"),
    entry("511500", "宜宾市"),
    entry("511600", "广安市"),
    entry("511700", "达州市"),
    entry("511800", "雅安市"),
    entry("511900", "巴中市"),
    entry("512000", "资阳市"),
    entry("513200", "阿坝藏族羌族自治州"),
    entry("513300", "甘孜藏族自治州"),
    entry("513400", "凉山彝族自治州"),
    // 52 Guizhou
    entry("520100", "贵阳市"),
    entry("520200", "六盘水市"),
    entry("520300", "遵义市"),
    entry("520400", "安顺市"),
    entry("520500", "毕节市"),
    entry("520600", "铜仁市"),
    entry("522300", "黔西南布依族苗族自治州"),
    entry("522600", "黔东南苗族侗族自治州"),
    entry("522700", "黔南布依族苗族自治州"),
    // 53 Yunnan
    entry("530100", "昆明市"),
    entry("530300", "曲靖市"),
    entry("530400", "玉溪市"),
    entry("530500", "保山市"),
    entry("530600", "昭通市"),
    entry("530700", "丽江市"),
    entry("530800", "普洱市"),
    entry("530900", "临沧市"),
    entry("532300", "楚雄彝族自治州"),
    entry("532500", "红河哈尼族彝族自治州"),
    entry("532600", "文山壮族苗族自治州"),
    entry("532800", "西双版纳傣族自治州"),
    entry("532900", "大理白族自治州"),
    entry("533100", "德宏傣族景颇族自治州"),
    entry("533300", "怒江傈僳族自治州"),
    entry("533400", "迪庆藏族自治州"),
    // 54 Tibet
    entry("540100", "拉萨市"),
    entry("540200", "日喀则市"),
    entry("540300", "昌都市"),
    entry("540400", "林芝市"),
    entry("540500", "山南市"),
    entry("540600", "那曲市"),
    entry("542500", "阿里地区"),
    // 61 Shaanxi
    entry("610100", "西安市"),
    entry("610200", "铜川市"),
    entry("610300", "宝鸡市"),
    entry("610400", "咸阳市"),
    entry("610500", "渭南市"),
    entry("610600", "延安市"),
    entry("610700", "汉中市"),
    entry("610800", "榆林市"),
    entry("610900", "安康市"),
    entry("611000", "商洛市"),
    // 62 Gansu
    entry("620100", "兰州市"),
    entry("620200", "嘉峪关市"),
    entry("620300", "金昌市"),
    entry("620400", "白银市"),
    entry("620500", "天水市"),
    entry("620600", "武威市"),
    entry("620700", "张掖市"),
    entry("620800", "平凉市"),
    entry("620900", "酒泉市"),
    entry("621000", "庆阳市"),
    entry("621100", "定西市"),
    entry("621200", "陇南市"),
    entry("622900", "临夏回族自治州"),
    entry("623000", "甘南藏族自治州"),
    // 63 Qinghai
    entry("630100", "西宁市"),
    entry("630200", "海东市"),
    entry("632200", "海北藏族自治州"),
    entry("632300", "黄南藏族自治州"),
    entry("632500", "海南藏族自治州"),
    entry("632600", "果洛藏族自治州"),
    entry("632700", "玉树藏族自治州"),
    entry("632800", "海西蒙古族藏族自治州"),
    // 64 Ningxia
    entry("640100", "银川市"),
    entry("640200", "石嘴山市"),
    entry("640300", "吴忠市"),
    entry("640400", "固原市"),
    entry("640500", "中卫市"),
    // 65 Xinjiang
    entry("650100", "乌鲁木齐市"),
    entry("650200", "克拉玛依市"),
    entry("650400", "吐鲁番市"),
    entry("650500", "哈密市"),
    entry("652300", "昌吉回族自治州"),
    entry("652700", "博尔塔拉蒙古自治州"),
    entry("652800", "巴音郭楞蒙古自治州"),
    entry("652900", "阿克苏地区"),
    entry("653000", "克孜勒苏柯尔克孜自治州"),
    entry("653100", "喀什地区"),
    entry("653200", "和田地区"),
    entry("654000", "伊犁哈萨克自治州"),
    entry("654200", "塔城地区"),
    entry("654300", "阿勒泰地区"),
    entry("659000", "自治区直辖县级行政区划"),
    // 71/81/82: GB/T 2260 lists no subdivisions, so the division itself is the
    // only valid "city".
    entry("710000", "台湾省"),
    entry("810000", "香港特别行政区"),
    entry("820000", "澳门特别行政区"),
];

/// Looks up a provincial-level division by its two-digit code (`"37"`).
#[must_use]
pub fn province(code: &str) -> Option<&'static Province> {
    PROVINCES
        .binary_search_by(|p| p.code.cmp(code))
        .ok()
        .and_then(|i| PROVINCES.get(i))
}

/// Looks up a prefecture-level division by its six-digit code (`"370100"`).
#[must_use]
pub fn city(code: &str) -> Option<&'static City> {
    CITIES
        .binary_search_by(|c| c.code.cmp(code))
        .ok()
        .and_then(|i| CITIES.get(i))
}

/// True when `city` is a known prefecture-level code and belongs to the
/// two-digit `province` code.
#[must_use]
pub fn city_in_province(city: &str, province: &str) -> bool {
    // Province must be two chars, otherwise a prefix like "3" would match.
    province.len() == 2 && self::city(city).is_some_and(|c| c.code.get(..2) == Some(province))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn provinces_are_34_sorted_and_unique() {
        assert_eq!(PROVINCES.len(), 34);
        assert!(PROVINCES.windows(2).all(|w| w[0].code < w[1].code));
        for p in PROVINCES {
            assert_eq!(p.code.len(), 2, "{p:?}");
            assert!(p.code.bytes().all(|b| b.is_ascii_digit()), "{p:?}");
            assert!(!p.name_zh.is_empty() && !p.name_en.is_empty(), "{p:?}");
        }
    }

    #[test]
    fn province_codes_match_gb_t_2260() {
        let codes: Vec<&str> = PROVINCES.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
                "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
                "63", "64", "65", "71", "81", "82"
            ]
        );
    }

    #[test]
    fn province_lookup() {
        assert_eq!(province("11").map(|p| p.name_en), Some("Beijing"));
        assert_eq!(province("37").map(|p| p.name_zh), Some("山东省"));
        assert_eq!(province("65").map(|p| p.name_en), Some("Xinjiang"));
        assert_eq!(province("71").map(|p| p.name_en), Some("Taiwan"));
        assert_eq!(province("81").map(|p| p.name_en), Some("Hong Kong"));
        assert_eq!(province("82").map(|p| p.name_en), Some("Macau"));
        for missing in [
            "", "1", "10", "16", "20", "47", "66", "70", "80", "83", "91", "110000",
        ] {
            assert!(province(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn cities_are_sorted_unique_and_well_formed() {
        assert!(CITIES.windows(2).all(|w| w[0].code < w[1].code));
        for c in CITIES {
            assert_eq!(c.code.len(), 6, "{c:?}");
            assert!(c.code.bytes().all(|b| b.is_ascii_digit()), "{c:?}");
            assert!(c.code.ends_with("00"), "{c:?}");
            assert!(province(&c.code[..2]).is_some(), "{c:?}");
            assert!(!c.name_zh.is_empty(), "{c:?}");
        }
        let names: HashSet<(&str, &str)> =
            CITIES.iter().map(|c| (&c.code[..2], c.name_zh)).collect();
        assert_eq!(
            names.len(),
            CITIES.len(),
            "duplicate name inside a province"
        );
    }

    #[test]
    fn every_province_has_a_city() {
        for p in PROVINCES {
            assert!(CITIES.iter().any(|c| c.code.starts_with(p.code)), "{p:?}");
        }
    }

    #[test]
    fn city_counts_match_the_2023_list() {
        // 333 prefecture-level divisions, plus 5 municipal groupings, 4
        // province-administered county groupings and the 3 undivided codes.
        assert_eq!(CITIES.len(), 333 + 5 + 4 + 3);
        let count = |suffix: &str| {
            CITIES
                .iter()
                .filter(|c| c.name_zh.ends_with(suffix))
                .count()
        };
        assert_eq!(count("市"), 293);
        assert_eq!(count("地区"), 7);
        assert_eq!(count("自治州"), 30);
        assert_eq!(count("盟"), 3);
        assert_eq!(count("县级行政区划"), 4);
    }

    #[test]
    fn per_province_counts() {
        let expected: &[(&str, usize)] = &[
            ("11", 1),
            ("12", 1),
            ("13", 11),
            ("14", 11),
            ("15", 12),
            ("21", 14),
            ("22", 9),
            ("23", 13),
            ("31", 1),
            ("32", 13),
            ("33", 11),
            ("34", 16),
            ("35", 9),
            ("36", 11),
            ("37", 16),
            ("41", 18),
            ("42", 14),
            ("43", 14),
            ("44", 21),
            ("45", 14),
            ("46", 5),
            ("50", 2),
            ("51", 21),
            ("52", 9),
            ("53", 16),
            ("54", 7),
            ("61", 10),
            ("62", 14),
            ("63", 8),
            ("64", 5),
            ("65", 15),
            ("71", 1),
            ("81", 1),
            ("82", 1),
        ];
        assert_eq!(expected.len(), PROVINCES.len());
        for (code, n) in expected {
            let got = CITIES.iter().filter(|c| c.code.starts_with(code)).count();
            assert_eq!(got, *n, "province {code}");
        }
    }

    #[test]
    fn city_lookup() {
        assert_eq!(city("370100").map(|c| c.name_zh), Some("济南市"));
        assert_eq!(city("530100").map(|c| c.name_zh), Some("昆明市"));
        assert_eq!(city("110100").map(|c| c.name_zh), Some("市辖区"));
        assert_eq!(city("500200").map(|c| c.name_zh), Some("县"));
        assert_eq!(city("152900").map(|c| c.name_zh), Some("阿拉善盟"));
        assert_eq!(city("222400").map(|c| c.name_zh), Some("延边朝鲜族自治州"));
        assert_eq!(city("232700").map(|c| c.name_zh), Some("大兴安岭地区"));
        assert_eq!(city("460400").map(|c| c.name_zh), Some("儋州市"));
        for grouping in ["419000", "429000", "469000", "659000"] {
            assert!(city(grouping).is_some(), "{grouping}");
        }
        for sar in ["710000", "810000", "820000"] {
            assert!(city(sar).is_some(), "{sar}");
        }
    }

    #[test]
    fn city_lookup_rejects_unknown_and_retired_codes() {
        for code in [
            "",
            "37",
            "3701",
            "370101",
            "370000",
            "110000",
            "110200",
            "120200",
            "310200",
            // Abolished: Chaohu (2011), Laiwu (2019); Chongqing's 500300 was
            // never assigned.
            "341400",
            "371200",
            "500300",
            "830000",
            "990000",
            "３７０１００",
        ] {
            assert!(city(code).is_none(), "{code}");
        }
    }

    #[test]
    fn city_in_province_checks_prefix() {
        assert!(city_in_province("370100", "37"));
        assert!(city_in_province("110100", "11"));
        assert!(city_in_province("500200", "50"));
        assert!(city_in_province("659000", "65"));
        assert!(city_in_province("810000", "81"));
        assert!(!city_in_province("370100", "53"));
        assert!(!city_in_province("370100", "3"));
        assert!(!city_in_province("370100", "370"));
        assert!(!city_in_province("370100", ""));
        assert!(!city_in_province("371200", "37"));
        assert!(!city_in_province("999900", "99"));
    }
}
