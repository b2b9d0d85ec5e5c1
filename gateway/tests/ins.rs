//! INS property tests: key rule, Corsica départements, OID and environment. All matricules are
//! generated; none is a real person's.

use dmp_connector::deposit::InsAuthority;
use gateway::ins::{Ins, InsEnvironment, InsError, check_matricule, compute_key};
use proptest::prelude::*;

fn reference_key(number: &str) -> u8 {
    // Independent statement of the rule: 2A→19, 2B→18 at positions 6–7, then 97 − N mod 97.
    let replaced = match &number[5..7] {
        "2A" => format!("{}19{}", &number[..5], &number[7..]),
        "2B" => format!("{}18{}", &number[..5], &number[7..]),
        _ => number.to_owned(),
    };
    (97 - replaced.parse::<u64>().unwrap() % 97) as u8
}

proptest! {
    #[test]
    fn computed_key_validates_and_every_other_key_fails(number in "[0-9]{13}", other in 0u8..100) {
        let key = compute_key(&number).unwrap();
        prop_assert_eq!(key, reference_key(&number));
        prop_assert!((1..=97).contains(&key));
        let valid = format!("{number}{key:02}");
        prop_assert!(check_matricule(&valid).is_ok());
        if other != key {
            let is_bad_key = matches!(
                check_matricule(&format!("{number}{other:02}")),
                Err(InsError::BadKey { .. })
            );
            prop_assert!(is_bad_key);
        }
    }

    #[test]
    fn corsica_letters_count_as_19_and_18_at_positions_6_7(
        head in "[12][0-9]{4}", letter in "[AB]", tail in "[0-9]{6}"
    ) {
        let number = format!("{head}2{letter}{tail}");
        let key = compute_key(&number).unwrap();
        prop_assert_eq!(key, reference_key(&number));
        let digits = format!("{head}{}{tail}", if letter == "A" { "19" } else { "18" });
        prop_assert_eq!(key, compute_key(&digits).unwrap());
        let valid = format!("{number}{key:02}");
        prop_assert!(check_matricule(&valid).is_ok());
        // Lower case is the same département.
        let lower = format!("{head}2{}{tail}{key:02}", letter.to_lowercase());
        prop_assert!(check_matricule(&lower).is_ok());
    }

    #[test]
    fn letters_anywhere_else_are_invalid(number in "[0-9]{13}", position in 0usize..13, letter in "[A-Z]") {
        let mut bytes = number.into_bytes();
        bytes[position] = letter.as_bytes()[0];
        if position == 6 && bytes[5] == b'2' && (letter == "A" || letter == "B") {
            return Ok(());
        }
        let text = String::from_utf8(bytes).unwrap();
        let is_invalid = matches!(compute_key(&text), Err(InsError::InvalidCharacter { .. }));
        prop_assert!(is_invalid);
    }

    #[test]
    fn any_single_digit_change_is_detected(number in "[0-9]{13}", position in 0usize..13, delta in 1u8..10) {
        let key = compute_key(&number).unwrap();
        let mut bytes = number.into_bytes();
        bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        let changed = format!("{changed}{key:02}");
        prop_assert!(check_matricule(&changed).is_err());
    }

    #[test]
    fn environment_decides_which_authorities_are_accepted(number in "[0-9]{13}", index in 0usize..4, test in any::<bool>()) {
        let authority = InsAuthority::ALL[index];
        let environment = if test { InsEnvironment::Test } else { InsEnvironment::Production };
        let matricule = format!("{number}{:02}", compute_key(&number).unwrap());
        let result = Ins::new(&matricule, authority.oid(), environment);
        let expected = matches!(
            (authority, environment),
            (InsAuthority::Nir | InsAuthority::Nia, InsEnvironment::Production)
                | (InsAuthority::TestNir | InsAuthority::DemoNir, InsEnvironment::Test)
        );
        prop_assert_eq!(result.is_ok(), expected);
        if let Err(error) = result {
            let is_wrong_environment = matches!(error, InsError::WrongEnvironment { .. });
            prop_assert!(is_wrong_environment);
        } else {
            let ins = Ins::new(&matricule, authority.oid(), environment).unwrap();
            prop_assert_eq!(Ins::from_cx(&ins.to_cx(), environment).unwrap(), ins);
        }
    }
}

#[test]
fn unknown_and_legacy_oids_are_refused() {
    let matricule = format!("1850799000123{:02}", compute_key("1850799000123").unwrap());
    for oid in ["1.2.250.1.213.1.4.2", "1.2.250.1.213.1.4.5", "1.2.3"] {
        assert!(matches!(
            Ins::new(&matricule, oid, InsEnvironment::Production),
            Err(InsError::UnknownAuthority { .. })
        ));
    }
}

#[test]
fn lengths_and_cx_shapes_are_checked() {
    assert!(matches!(
        check_matricule("12345"),
        Err(InsError::WrongLength { length: 5 })
    ));
    assert!(matches!(
        check_matricule("1234567890123456"),
        Err(InsError::WrongLength { .. })
    ));
    assert!(matches!(
        check_matricule("12345678901é4"),
        Err(InsError::WrongLength { .. })
    ));
    let matricule = format!("1850799000123{:02}", compute_key("1850799000123").unwrap());
    let env = InsEnvironment::Test;
    assert!(Ins::from_cx(&format!("{matricule}^^^&1.2.250.1.213.1.4.10&ISO^NH"), env).is_ok());
    assert!(Ins::from_cx(&format!("{matricule}^^^&1.2.250.1.213.1.4.10&ISO"), env).is_ok());
    assert!(matches!(
        Ins::from_cx(&format!("{matricule}^^^&1.2.250.1.213.1.4.10&ISO^PI"), env),
        Err(InsError::MalformedCx { .. })
    ));
    assert!(matches!(
        Ins::from_cx(&matricule, env),
        Err(InsError::MalformedCx { .. })
    ));
    // The error text never contains the matricule.
    let error = Ins::new(
        &format!("{}00", &matricule[..13]),
        "1.2.250.1.213.1.4.10",
        env,
    )
    .unwrap_err();
    assert!(!error.to_string().contains(&matricule[..13]));
}
