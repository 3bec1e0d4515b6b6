//! DEVELOPMENT ONLY: dumps every frame's located output (per frame and over tracks) of a saved
//! model with the truth beside it, as CSV on stdout, for offline study of the smoother.
//! Usage: dev_dump MODEL_DIR DATASET
mod common;
use rfloc_learn::track::TrackRefine;
use rfloc_learn::Model;

fn main() {
    let mut a = std::env::args().skip(1);
    let model = Model::load(std::path::Path::new(&a.next().unwrap())).unwrap();
    let ds = common::load(&a.next().unwrap());
    let pf = model.locate(&ds, true).unwrap();
    let tr = model.locate_tracks(&ds, &TrackRefine::default()).unwrap();
    let t = ds.truth.positions.as_ref().unwrap();
    let held = &model.meta.metrics.holdout_tracks;
    println!("frame,track,held,t,tx,ty,tz,px,py,pz,pacc,pfit,pbasin,pex,pey,snap,kx,ky,kz,kacc,kfit,kbasin,kex,key");
    for i in 0..ds.n_frames() {
        let (p, k) = (&pf[i], &tr[i]);
        println!(
            "{i},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            ds.track_of(i),
            held.contains(&ds.track_of(i)) as u8,
            ds.timestamps[i],
            t[[i, 0]],
            t[[i, 1]],
            t[[i, 2]],
            p.position[0],
            p.position[1],
            p.position[2],
            p.accuracy_m,
            p.fit_sigma_m,
            p.basin_spread_m,
            p.encoder[0],
            p.encoder[1],
            p.snapshots,
            k.position[0],
            k.position[1],
            k.position[2],
            k.accuracy_m,
            k.fit_sigma_m,
            k.basin_spread_m,
            k.encoder[0],
            k.encoder[1],
        );
    }
}
