//! What makes a synthetic person and a synthetic camera: drawn from a seed, then rendered.
//! Identities differ in clothing colours and patterns, build, hair, shoes and accessories;
//! cameras differ in background, illumination, colour cast, person scale, blur and noise.

use super::canvas::{Canvas, Rgb};
use crate::data::rng::Rng;

fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let c = v * s;
    let hp = (h.rem_euclid(1.0)) * 6.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

fn random_color(rng: &mut Rng) -> Rgb {
    hsv(rng.unit(), rng.range(0.25, 1.0), rng.range(0.2, 0.95))
}

const SKIN: [Rgb; 5] = [
    [236.0, 188.0, 160.0],
    [198.0, 134.0, 66.0],
    [141.0, 85.0, 36.0],
    [255.0, 219.0, 172.0],
    [224.0, 172.0, 105.0],
];
const HAIR: [Rgb; 5] = [
    [20.0, 20.0, 20.0],
    [60.0, 40.0, 20.0],
    [120.0, 80.0, 40.0],
    [200.0, 180.0, 120.0],
    [140.0, 140.0, 140.0],
];
const TROUSERS: [Rgb; 4] = [
    [40.0, 50.0, 90.0],
    [30.0, 30.0, 30.0],
    [100.0, 100.0, 100.0],
    [150.0, 130.0, 100.0],
];

/// The pattern of a top.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    Solid,
    Stripes { period: f32, second: Rgb },
    Checks { cells: f32, second: Rgb },
    Jacket { inner: Rgb },
}

#[derive(Debug, Clone, Copy)]
enum Accessory {
    None,
    Backpack(Rgb),
    Handbag { color: Rgb, left: bool },
    Hat(Rgb),
}

/// One identity's looks.
#[derive(Debug, Clone)]
pub struct Person {
    skin: Rgb,
    hair: Rgb,
    top: Rgb,
    pattern: Pattern,
    long_sleeves: bool,
    bottom: Rgb,
    skirt: bool,
    shoes: Rgb,
    height: f32,
    width: f32,
    legs: f32,
    accessory: Accessory,
}

impl Person {
    /// Draws an identity.
    pub fn draw(rng: &mut Rng) -> Self {
        let top = random_color(rng);
        let pattern = match rng.below(20) {
            0..=9 => Pattern::Solid,
            10..=14 => Pattern::Stripes {
                period: rng.range(0.12, 0.3),
                second: random_color(rng),
            },
            15..=17 => Pattern::Checks {
                cells: rng.range(3.0, 6.0),
                second: random_color(rng),
            },
            _ => Pattern::Jacket {
                inner: random_color(rng),
            },
        };
        let bottom = if rng.chance(0.4) {
            *rng.pick(&TROUSERS)
        } else {
            random_color(rng)
        };
        let accessory = match rng.below(20) {
            0..=7 => Accessory::None,
            8..=12 => Accessory::Backpack(random_color(rng)),
            13..=16 => Accessory::Handbag {
                color: random_color(rng),
                left: rng.chance(0.5),
            },
            _ => Accessory::Hat(random_color(rng)),
        };
        Self {
            skin: *rng.pick(&SKIN),
            hair: *rng.pick(&HAIR),
            top,
            pattern,
            long_sleeves: rng.chance(0.6),
            bottom,
            skirt: rng.chance(0.15),
            shoes: if rng.chance(0.7) {
                [30.0, 28.0, 25.0]
            } else {
                [235.0, 235.0, 230.0]
            },
            height: rng.range(0.9, 1.05),
            width: rng.range(0.85, 1.2),
            legs: rng.range(0.44, 0.54),
            accessory,
        }
    }

    fn top_color(&self, u: f32, v: f32) -> Rgb {
        match self.pattern {
            Pattern::Solid => self.top,
            Pattern::Stripes { period, second } => {
                if (v / period).floor() as i64 % 2 == 0 {
                    self.top
                } else {
                    second
                }
            }
            Pattern::Checks { cells, second } => {
                if ((u * cells).floor() + (v * cells * 1.5).floor()) as i64 % 2 == 0 {
                    self.top
                } else {
                    second
                }
            }
            Pattern::Jacket { inner } => {
                if (u - 0.5).abs() < 0.14 {
                    inner
                } else {
                    self.top
                }
            }
        }
    }

    /// Renders the person onto `canvas`: feet at `ground`, centred at `cx`, `size` pixels
    /// tall before the identity's own height factor; `back` is the view from behind, `stride`
    /// the leg spread in 0–1.
    pub fn render(
        &self,
        canvas: &mut Canvas,
        cx: f32,
        ground: f32,
        size: f32,
        back: bool,
        stride: f32,
    ) {
        let h = size * self.height;
        let top_y = ground - h;
        let head_r = h * 0.075;
        let shoulder = h * 0.13 * self.width;
        let torso_top = top_y + head_r * 2.1;
        let hip = ground - h * self.legs;
        let arm = shoulder * 0.32;
        // Backpack behind the body: from the front only its sides show.
        if let Accessory::Backpack(color) = self.accessory {
            let half = if back {
                shoulder * 0.85
            } else {
                shoulder * 1.08
            };
            canvas.rect(
                cx - half,
                torso_top + h * 0.03,
                cx + half,
                hip - h * 0.02,
                |_, _| color,
            );
        }
        // Legs or skirt.
        let leg_w = shoulder * 0.42;
        let spread = stride * shoulder * 0.35;
        let bottom = self.bottom;
        let skin = self.skin;
        if self.skirt {
            canvas.rect(
                cx - shoulder * 0.95,
                hip,
                cx + shoulder * 0.95,
                hip + (ground - hip) * 0.45,
                |_, _| bottom,
            );
            for side in [-1.0, 1.0] {
                let x = cx + side * (shoulder * 0.45 + spread * 0.5);
                canvas.rect(
                    x - leg_w * 0.35,
                    hip + (ground - hip) * 0.45,
                    x + leg_w * 0.35,
                    ground - h * 0.03,
                    |_, _| skin,
                );
            }
        } else {
            for side in [-1.0, 1.0] {
                let x = cx + side * (shoulder * 0.45 + spread * 0.5);
                canvas.rect(
                    x - leg_w * 0.5,
                    hip,
                    x + leg_w * 0.5,
                    ground - h * 0.03,
                    |_, _| bottom,
                );
            }
        }
        let shoes = self.shoes;
        for side in [-1.0, 1.0] {
            let x = cx + side * (shoulder * 0.45 + spread * 0.5);
            canvas.rect(
                x - leg_w * 0.6,
                ground - h * 0.035,
                x + leg_w * 0.6,
                ground,
                |_, _| shoes,
            );
        }
        // Arms, then the torso over them.
        let sleeve = if self.long_sleeves {
            self.top
        } else {
            self.skin
        };
        for side in [-1.0, 1.0] {
            let x = cx + side * (shoulder + arm * 0.5);
            let swing = side * stride * arm * 0.6;
            canvas.rect(
                x - arm * 0.5 + swing,
                torso_top + h * 0.02,
                x + arm * 0.5 + swing,
                hip + h * 0.05,
                |_, v| {
                    if self.long_sleeves || v < 0.35 {
                        sleeve
                    } else {
                        skin
                    }
                },
            );
        }
        let person = self.clone();
        canvas.rect(
            cx - shoulder,
            torso_top,
            cx + shoulder,
            hip + h * 0.02,
            |u, v| {
                if back {
                    // No jacket opening from behind.
                    match person.pattern {
                        Pattern::Jacket { .. } => person.top,
                        _ => person.top_color(u, v),
                    }
                } else {
                    person.top_color(u, v)
                }
            },
        );
        if let Accessory::Handbag { color, left } = self.accessory {
            let side = if left != back { -1.0 } else { 1.0 };
            let x = cx + side * (shoulder + arm * 1.3);
            canvas.rect(
                x - arm * 0.9,
                hip - h * 0.04,
                x + arm * 0.9,
                hip + h * 0.1,
                |_, _| color,
            );
        }
        // Neck, head, hair (all hair from behind), hat.
        canvas.rect(
            cx - head_r * 0.35,
            top_y + head_r * 1.7,
            cx + head_r * 0.35,
            torso_top + 1.0,
            |_, _| skin,
        );
        canvas.ellipse(
            cx,
            top_y + head_r,
            head_r * 0.85,
            head_r,
            if back { self.hair } else { self.skin },
        );
        canvas.ellipse(
            cx,
            top_y + head_r * 0.55,
            head_r * 0.9,
            head_r * 0.6,
            self.hair,
        );
        if let Accessory::Hat(color) = self.accessory {
            canvas.rect(
                cx - head_r * 1.2,
                top_y + head_r * 0.2,
                cx + head_r * 1.2,
                top_y + head_r * 0.55,
                |_, _| color,
            );
            canvas.ellipse(
                cx,
                top_y + head_r * 0.25,
                head_r * 0.85,
                head_r * 0.5,
                color,
            );
        }
    }
}

/// One camera's viewing conditions.
#[derive(Debug, Clone)]
pub struct Camera {
    wall: Rgb,
    floor: Rgb,
    horizon: f32,
    texture: f32,
    stripes: bool,
    pub gain: f32,
    pub cast: Rgb,
    pub scale: f32,
    pub blur: usize,
    pub noise: f32,
}

impl Camera {
    /// Draws a camera.
    pub fn draw(rng: &mut Rng) -> Self {
        Self {
            wall: hsv(rng.unit(), rng.range(0.0, 0.4), rng.range(0.3, 0.9)),
            floor: hsv(rng.unit(), rng.range(0.0, 0.3), rng.range(0.2, 0.7)),
            horizon: rng.range(0.45, 0.8),
            texture: rng.range(0.0, 25.0),
            stripes: rng.chance(0.4),
            gain: rng.range(0.65, 1.25),
            cast: [
                rng.range(0.85, 1.15),
                rng.range(0.9, 1.1),
                rng.range(0.85, 1.15),
            ],
            scale: rng.range(0.72, 0.93),
            blur: rng.below(3),
            noise: rng.range(2.0, 10.0),
        }
    }

    /// Paints this camera's background, varied per image by `rng`.
    pub fn background(&self, canvas: &mut Canvas, rng: &mut Rng) {
        let shift = rng.range(-0.06, 0.06);
        let phase = rng.range(0.0, 8.0);
        let (w, h) = (canvas.width as f32, canvas.height as f32);
        let (wall, floor, texture, stripes) = (self.wall, self.floor, self.texture, self.stripes);
        let horizon = (self.horizon + shift) * h;
        canvas.paint(|x, y| {
            let (xf, yf) = (x as f32, y as f32);
            let base = if yf < horizon { wall } else { floor };
            let t = if stripes {
                ((xf + phase) / (w / 6.0)).floor() as i64 % 2
            } else {
                (((xf + phase) / 5.0).floor() as i64 * 7 + (yf / 5.0).floor() as i64 * 13) % 3
            } as f32;
            let shade = 1.0 - 0.25 * (yf / h);
            base.map(|c| c * shade + texture * (t - 0.5))
        });
    }
}
