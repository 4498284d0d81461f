"""Routes, drugs and doses: what each route gives and holds, the dose a
session gets (by weight or by device, never above the plan's maximum) and the
dosing a plan may prescribe. Pure rules, re-exported by ``domain``."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from common.errors import field_error


@dataclass(frozen=True)
class Route:
    code: str
    drug: str
    # How long the chair, the clinician and the patient are held: the
    # treatment plus the observation before discharge.
    slot_minutes: int
    default_mg_per_kg: float | None
    default_max_dose_mg: float
    # Esketamine is dosed by device (56 or 84 mg), not by weight.
    fixed_doses_mg: tuple[float, ...] = ()
    min_observation_minutes: int = 0


ROUTES = {
    route.code: route
    for route in (
        # 0.5 mg/kg over 40 minutes, then recovery: about an hour.
        Route("iv_infusion", "ketamine", 60, 0.5, 75.0),
        Route("im_injection", "ketamine", 60, 0.5, 75.0),
        # Spravato REMS: at least two hours of observation after dosing.
        Route("intranasal_esketamine", "esketamine", 120, None, 84.0, fixed_doses_mg=(56.0, 84.0),
              min_observation_minutes=120),
        Route("oral_sublingual", "ketamine", 90, 1.0, 300.0),
    )
}
ESKETAMINE = "intranasal_esketamine"


def route(code: str) -> Route:
    try:
        return ROUTES[code]
    except KeyError:
        raise field_error("route", f"must be one of {', '.join(ROUTES)}") from None


def compute_dose_mg(*, weight_kg: float | None, mg_per_kg: float | None, fixed_dose_mg: float | None,
                    max_dose_mg: float, requested_mg: float | None = None,
                    device_doses_mg: tuple[float, ...] = (), max_mg_per_kg: float | None = None) -> float:
    """The dose to give, in mg, rounded down to 0.1 mg: what is charted may
    be less than weight × mg/kg by a rounding step, never more. Weight-based
    plans use the weight recorded at check-in; a clinician may give less
    than computed (titration) but never more than the plan's maximum, in mg
    or (``max_mg_per_kg``) per kg of that weight."""
    if fixed_dose_mg is not None:
        dose = float(fixed_dose_mg)
    else:
        if mg_per_kg is None:
            raise field_error("mg_per_kg", "the plan has neither a mg/kg protocol nor a fixed dose")
        if weight_kg is None or weight_kg <= 0:
            raise field_error("weight_kg", "a weight recorded at check-in is needed to compute the dose")
        dose = weight_based_mg(weight_kg, mg_per_kg)
    if requested_mg is not None:
        if device_doses_mg and requested_mg not in device_doses_mg:
            # Esketamine comes in 28 mg devices: 56 or 84 mg, nothing between.
            raise field_error("dose_mg", "must be one of " + ", ".join(f"{d:g}" for d in device_doses_mg) + " mg")
        if requested_mg <= 0:
            raise field_error("dose_mg", "must be above 0")
        if round_dose(requested_mg) > dose:
            raise field_error("dose_mg", f"{requested_mg} mg is above the {dose} mg the plan gives for this weight")
        dose = round_dose(requested_mg)
    if dose > round_dose(max_dose_mg):
        raise field_error("dose_mg", f"{dose} mg is above the plan's maximum of {round_dose(max_dose_mg)} mg")
    if max_mg_per_kg is not None:
        if weight_kg is None or weight_kg <= 0:
            raise field_error("weight_kg", "a weight recorded at check-in is needed to check the plan's mg/kg maximum")
        ceiling = weight_based_mg(weight_kg, max_mg_per_kg)
        if dose > ceiling:
            raise field_error("dose_mg", f"{dose} mg is above the plan's maximum of {max_mg_per_kg:g} mg/kg "
                              f"({ceiling} mg at {weight_kg:g} kg)")
    return dose


def weight_based_mg(weight_kg: float, mg_per_kg: float) -> float:
    """Weight × mg/kg, worked out in decimal (0.3 × 70 is 21, not
    20.999…) and rounded down to 0.1 mg."""
    return _down_to_tenth(Decimal(str(weight_kg)) * Decimal(str(mg_per_kg)))


def round_dose(mg: float) -> float:
    # Down, never up: 62.5 kg × 0.5 mg/kg = 31.25 mg is charted as 31.2 mg,
    # so the charted dose is never more than the prescription.
    return _down_to_tenth(Decimal(str(mg)))


def _down_to_tenth(mg: Decimal) -> float:
    return float(mg.quantize(Decimal("0.1"), rounding=ROUND_DOWN))


def check_plan_dosing(route_code: str, mg_per_kg: float | None, fixed_dose_mg: float | None,
                      max_dose_mg: float, max_mg_per_kg: float | None = None) -> None:
    chosen = route(route_code)
    if chosen.fixed_doses_mg:
        if fixed_dose_mg not in chosen.fixed_doses_mg:
            raise field_error("fixed_dose_mg", "esketamine is given as "
                              + " or ".join(f"{d:g}" for d in chosen.fixed_doses_mg) + " mg")
        if mg_per_kg is not None:
            raise field_error("mg_per_kg", "esketamine is not dosed by weight")
    else:
        if mg_per_kg is None:
            raise field_error("mg_per_kg", f"{route_code} needs a dose protocol in mg/kg")
        if fixed_dose_mg is not None:
            raise field_error("fixed_dose_mg", f"{route_code} is dosed by weight")
    if fixed_dose_mg is not None and fixed_dose_mg > max_dose_mg:
        raise field_error("max_dose_mg", "must be at least the fixed dose")
    if max_mg_per_kg is not None:
        if mg_per_kg is None:
            raise field_error("max_mg_per_kg", f"{route_code} is not dosed by weight")
        if max_mg_per_kg < mg_per_kg:
            raise field_error("max_mg_per_kg", f"must be at least the plan's {mg_per_kg:g} mg/kg")
