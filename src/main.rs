fn main() {
    let sc = moatsweep::model::params::baseline();
    let mut last = None;
    let out = moatsweep::model::solve_traced(&sc, &mut |r: &moatsweep::model::MonthRecord| last = Some(*r));
    println!("{:?}", out);
    println!("{:?}", last);
}
