//! The regions the service governs. GuardDuty, AWS Config, EBS encryption by default, the
//! default VPC and Session Manager's preferences are regional: Account Assurance and scoring
//! cover each of them in every governed region. Account-wide settings (IAM, S3 Block Public
//! Access, the multi-region trail and its monitoring) live in the home region, the one the
//! service is deployed in.

/// The governed regions: the home region first, then the others in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    all: Vec<String>,
}

impl Regions {
    /// `home` and `others` (duplicates and `home` itself among them are dropped).
    pub fn new(home: &str, others: impl IntoIterator<Item = String>) -> Self {
        let mut rest: Vec<String> = others.into_iter().filter(|r| r != home).collect();
        rest.sort();
        rest.dedup();
        let mut all = vec![home.to_owned()];
        all.extend(rest);
        Regions { all }
    }

    /// The deployment region: where account-wide settings are made and checked.
    pub fn home(&self) -> &str {
        &self.all[0]
    }

    /// Every governed region, the home region first.
    pub fn all(&self) -> &[String] {
        &self.all
    }

    pub fn is_home(&self, region: &str) -> bool {
        region == self.home()
    }
}

/// Is `name` shaped like an AWS region name (`us-east-1`, `ap-southeast-2`, `us-gov-west-1`)?
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| n > 0 && parts[parts.len() - 1].len() <= 2)
}

/// The `GovernedRegions` setting: a comma-separated list of region names, or empty for "the
/// home region and every region AWS enables by default" (then `None`).
pub fn parse_list(text: &str) -> Result<Option<Vec<String>>, String> {
    let names: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = names.iter().find(|n| !is_region_name(n)) {
        return Err(format!("{bad:?} is not an AWS region name"));
    }
    Ok(Some(names))
}

/// The regions AWS enables in every account ("opt-in-not-required"), from EC2's
/// `DescribeRegions` as (name, opt-in status): opt-in regions an account must enable first are
/// governed only when listed explicitly, since a new member account does not have them.
pub fn enabled_by_default<'a>(
    described: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    described
        .into_iter()
        .filter(|(_, status)| *status == "opt-in-not-required")
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_region_comes_first_and_the_others_once_each_in_order() {
        let r = Regions::new(
            "eu-west-1",
            ["us-east-1", "eu-west-1", "ap-south-1", "us-east-1"].map(String::from),
        );
        assert_eq!(r.all(), ["eu-west-1", "ap-south-1", "us-east-1"]);
        assert_eq!(r.home(), "eu-west-1");
        assert!(r.is_home("eu-west-1") && !r.is_home("us-east-1"));
        assert_eq!(Regions::new("us-east-1", []).all(), ["us-east-1"]);
    }

    #[test]
    fn the_setting_is_a_list_of_region_names_or_empty_for_the_default() {
        assert_eq!(parse_list(""), Ok(None));
        assert_eq!(parse_list(" , "), Ok(None));
        assert_eq!(
            parse_list("us-east-1, eu-west-1"),
            Ok(Some(vec!["us-east-1".into(), "eu-west-1".into()]))
        );
        assert_eq!(
            parse_list("us-gov-west-1"),
            Ok(Some(vec!["us-gov-west-1".into()]))
        );
        for bad in [
            "us-east",
            "US-EAST-1",
            "us-east-1,mars",
            "useast1",
            "us--1",
            "us-east-0",
        ] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn by_default_only_regions_every_account_has_are_governed() {
        let described = [
            ("us-east-1", "opt-in-not-required"),
            ("af-south-1", "not-opted-in"),
            ("me-south-1", "opted-in"),
            ("eu-west-1", "opt-in-not-required"),
        ];
        assert_eq!(enabled_by_default(described), ["us-east-1", "eu-west-1"]);
    }
}
