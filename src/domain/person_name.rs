//! Names compared as people write them: the same name in traditional or simplified
//! characters, with or without spaces or a middle dot, is one name.

/// Traditional characters common in Chinese names, each with its simplified form. Written as
/// data, kept small on purpose: a name's variants on an ID card and in a clerk's record
/// differ in these far more than in rare characters. Add a pair here to fold another.
const TRADITIONAL_TO_SIMPLIFIED: &[(char, char)] = &[
    ('張', '张'),
    ('陳', '陈'),
    ('劉', '刘'),
    ('黃', '黄'),
    ('趙', '赵'),
    ('吳', '吴'),
    ('孫', '孙'),
    ('馬', '马'),
    ('許', '许'),
    ('鄭', '郑'),
    ('謝', '谢'),
    ('韓', '韩'),
    ('馮', '冯'),
    ('鄧', '邓'),
    ('蕭', '萧'),
    ('葉', '叶'),
    ('羅', '罗'),
    ('鍾', '钟'),
    ('鐘', '钟'),
    ('盧', '卢'),
    ('蔣', '蒋'),
    ('賈', '贾'),
    ('閻', '阎'),
    ('楊', '杨'),
    ('龍', '龙'),
    ('錢', '钱'),
    ('湯', '汤'),
    ('陸', '陆'),
    ('顧', '顾'),
    ('譚', '谭'),
    ('萬', '万'),
    ('賴', '赖'),
    ('歐', '欧'),
    ('陽', '阳'),
    ('蘇', '苏'),
    ('賀', '贺'),
    ('鄒', '邹'),
    ('範', '范'),
    ('嶽', '岳'),
    ('溫', '温'),
    ('聶', '聂'),
    ('龔', '龚'),
    ('鄔', '邬'),
    ('閔', '闵'),
    ('單', '单'),
    ('關', '关'),
    ('齊', '齐'),
    ('紀', '纪'),
    ('費', '费'),
    ('莊', '庄'),
    ('喬', '乔'),
    ('簡', '简'),
    ('車', '车'),
    ('嚴', '严'),
    ('龐', '庞'),
    ('東', '东'),
    ('華', '华'),
    ('國', '国'),
    ('偉', '伟'),
    ('麗', '丽'),
    ('強', '强'),
    ('軍', '军'),
    ('傑', '杰'),
    ('榮', '荣'),
    ('紅', '红'),
    ('艷', '艳'),
    ('鳳', '凤'),
    ('蘭', '兰'),
    ('靜', '静'),
    ('義', '义'),
    ('輝', '辉'),
    ('寧', '宁'),
    ('慶', '庆'),
    ('鵬', '鹏'),
    ('濤', '涛'),
    ('壽', '寿'),
    ('愛', '爱'),
    ('雲', '云'),
    ('貴', '贵'),
    ('財', '财'),
    ('寶', '宝'),
    ('嬌', '娇'),
    ('燁', '烨'),
    ('穎', '颖'),
    ('雙', '双'),
    ('勝', '胜'),
    ('興', '兴'),
    ('權', '权'),
    ('誠', '诚'),
    ('劍', '剑'),
    ('鋒', '锋'),
    ('銘', '铭'),
    ('豐', '丰'),
    ('瑩', '莹'),
    ('潔', '洁'),
    ('曉', '晓'),
    ('亞', '亚'),
    ('婭', '娅'),
    ('頴', '颖'),
    ('峯', '峰'),
    ('為', '为'),
    ('廣', '广'),
    ('顏', '颜'),
    ('賓', '宾'),
    ('濱', '滨'),
    ('懷', '怀'),
];

/// Characters that only separate parts of a name: spaces (ASCII and full-width) and the
/// middle dots of transliterated names (`阿卜杜·热合曼`).
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '·' | '・' | '•' | '‧' | '.' | '\u{3000}')
}

fn simplified(c: char) -> char {
    TRADITIONAL_TO_SIMPLIFIED
        .iter()
        .find(|(t, _)| *t == c)
        .map_or(c, |(_, s)| *s)
}

/// The form two names are compared in: separators dropped, traditional characters of the
/// table simplified, Latin letters lowercased.
pub fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !is_separator(*c))
        .map(simplified)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether two spellings name the same person (after `fold`).
pub fn same(a: &str, b: &str) -> bool {
    fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_and_simplified_spellings_are_one_name() {
        assert!(same("張三", "张三"));
        assert!(same("陳麗華", "陈丽华"));
        assert!(!same("张三", "李四"));
        assert!(!same("张三", "张四"));
    }

    #[test]
    fn spaces_and_middle_dots_do_not_count() {
        assert!(same("张 三", "张三"));
        assert!(same("阿卜杜·热合曼", "阿卜杜热合曼"));
        assert!(same("阿卜杜・热合曼", "阿卜杜 热合曼"));
        assert!(same("Zhang San", "zhangsan"));
        assert!(same(" 张三\u{3000}", "张三"));
    }

    #[test]
    fn every_pair_maps_a_traditional_character_once_to_a_simplified_one() {
        for (i, (t, s)) in TRADITIONAL_TO_SIMPLIFIED.iter().enumerate() {
            assert_ne!(t, s);
            assert!(
                TRADITIONAL_TO_SIMPLIFIED[..i].iter().all(|(u, _)| u != t),
                "{t} twice"
            );
            assert_eq!(simplified(*s), *s, "{s} is already simplified");
        }
    }
}
