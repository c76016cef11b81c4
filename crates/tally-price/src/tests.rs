//! The price tag's arithmetic, pinned with the numbers written out.

use super::*;

/// Relative tolerance for f64 products: `6000 / 3.6e6` and `1 / 600` may differ in the last ulp.
const REL: f64 = 1e-12;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= REL * b.abs().max(f64::MIN_POSITIVE)
}

fn example(energy: ExampleEnergy) -> ExampleCost {
    ExampleCost {
        fpo: 1e9,
        bytes: 4e6,
        seconds: 0.01,
        energy,
    }
}

#[test]
fn equation_one_multiplies_e_by_d_by_h() {
    // 1e9 FPO and 2 J per example × 1000 examples × 3 experiments.
    let tag = PriceTag::new(
        example(ExampleEnergy::measured(2.0, "package-0")),
        1000,
        3,
        Some(400.0),
        Some(0.30),
    );
    let [one, data, all] = &tag.totals;
    assert_eq!(one.fpo.value, 1e9);
    assert_eq!(data.fpo.value, 1e12); // 1e9 × 1000
    assert_eq!(all.fpo.value, 3e12); // 1e9 × 1000 × 3
    assert_eq!(all.bytes.value, 1.2e10); // 4e6 × 3000
    assert!(close(all.time.value, 30.0)); // 0.01 s × 3000
    assert_eq!(all.energy_j.as_ref().unwrap().value, 6000.0); // 2 J × 3000
    let kwh = all.energy_kwh.as_ref().unwrap();
    assert!(close(kwh.value, 1.0 / 600.0)); // 6000 J / 3.6e6 J/kWh
    assert_eq!(kwh.unit, "kWh");
    assert_eq!(kwh.source, Source::Measured);
    // 1/600 kWh × 400 g/kWh = 2/3 g = 6.6667e-4 kg.
    let co2 = all.co2e_kg.as_ref().unwrap();
    assert!(close(co2.value, 2.0 / 3.0 / 1000.0));
    assert_eq!(co2.unit, "kg CO2e");
    // 1/600 kWh × 0.30 per kWh = 0.0005.
    assert!(close(
        all.money_energy.as_ref().unwrap().value,
        0.30 / 600.0
    ));
    assert!(all.money_time.is_none());
    assert_eq!(tag.grid_g_per_kwh.source, Source::UserGiven);
    assert_eq!(one.fpo.source, Source::Executed);
}

#[test]
fn no_energy_means_no_co2e_and_no_energy_money() {
    let tag = PriceTag::new(
        example(ExampleEnergy::not_measured("no powercap directory")),
        100,
        2,
        None,
        Some(0.30),
    )
    .with_price_per_hour(Some(3.6));
    for t in &tag.totals {
        assert!(t.energy_j.is_none() && t.energy_kwh.is_none());
        assert!(t.co2e_kg.is_none(), "CO2e without energy at {}", t.scale);
        assert!(t.money_energy.is_none());
    }
    // Machine time needs no energy: 0.01 s × 200 = 2 s = 2/3600 h × 3.6 per hour = 0.002.
    let all = &tag.totals[2];
    assert!(close(all.money_time.as_ref().unwrap().value, 0.002));
    assert_eq!(tag.grid_g_per_kwh.value, DEFAULT_GRID_G_PER_KWH);
    assert_eq!(tag.grid_g_per_kwh.source, Source::Default);
    assert_eq!(tag.per_example.energy.method, Method::NotMeasured);
}

#[test]
fn modelled_energy_is_labelled_modelled() {
    // 50 W × 0.01 s = 0.5 J per example; × 1000 × 3 = 1500 J.
    let tag = PriceTag::new(
        example(ExampleEnergy::modelled(50.0, 0.01)),
        1000,
        3,
        None,
        None,
    );
    assert_eq!(tag.per_example.energy.method, Method::Modelled);
    let all = &tag.totals[2];
    let j = all.energy_j.as_ref().unwrap();
    assert!(close(j.value, 1500.0));
    assert_eq!(j.source, Source::Modelled);
    assert_eq!(all.co2e_kg.as_ref().unwrap().source, Source::Modelled);
    // 1500 J / 3.6e6 × 436 g/kWh / 1000.
    assert!(close(
        all.co2e_kg.as_ref().unwrap().value,
        1500.0 / 3.6e6 * 0.436
    ));
    assert!(all.money_energy.is_none() && all.money_time.is_none());
    let json = serde_json::to_value(&tag).unwrap();
    assert_eq!(json["schema"], PRICE_SCHEMA);
    assert_eq!(json["per_example"]["energy"]["method"], "modelled");
    assert_eq!(json["totals"][2]["energy_j"]["source"], "modelled");
}
