# Nix functions around the nix-seal CLI: closureInfo and makeInitrd whose closures stop at seals.
#
#   let seal = import ./nix { nix-seal = <derivation or path with bin/nix-seal>; }; in
#   seal.sealedClosureInfo { rootPaths = [ launcher ]; seals = [ iso ]; }
#   seal.makeSealedInitrd { contents = [ { object = launcher; symlink = "/init"; } ]; seals = [ iso ]; }
#
# Plain `derivation`s: no nixpkgs, no stdenv, no shell. The builder is nix-seal itself; it reads
# the reference graph from the legacy exportReferencesGraph files Nix writes into the build
# directory (one file per root), so it needs neither the Nix database nor the daemon. Only
# builtins that exist since Nix 2.3 are used.
{
  nix-seal,
  system ? builtins.currentSystem,
  # Compressor programs for makeSealedInitrd, by name: { zstd = pkgs.zstd; xz = pkgs.xz; lz4 = pkgs.lz4; }.
  # A derivation means its bin/<name>; a string or path names the program itself. Without an entry,
  # nix-seal looks on PATH (unset in builds), then in /usr/bin and /bin, which only a build without
  # the sandbox can see. (gzip is built in, none needs nothing.)
  compressors ? { },
}:

let
  inherit (builtins)
    attrNames concatLists concatStringsSep elem elemAt filter genList head isAttrs isInt isList
    isString length stringLength substring toString typeOf unsafeDiscardStringContext;

  storeDir = builtins.storeDir;

  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  hasSlash = s: builtins.match ".*/.*" (unsafeDiscardStringContext s) != null;
  inStore = s: hasPrefix "${storeDir}/" s && stringLength s > stringLength storeDir + 1;

  # A value as it appears in an error message.
  show = v:
    let t = typeOf v; in
    if t == "string" then ''"${unsafeDiscardStringContext v}"''
    else if t == "path" then toString v
    else if t == "int" || t == "float" then toString v
    else if t == "bool" then (if v then "true" else "false")
    else if t == "null" then "null"
    else if t == "set" then
      (if v ? outPath then "derivation ${show v.outPath}"
       else "{ ${concatStringsSep " " (map (n: "${n} = …;") (attrNames v))} }")
    else if t == "lambda" || t == "primop" || t == "primop-app" then "a function"
    else "a ${t}";

  isDrvLike = v: isAttrs v && v ? outPath;

  bin =
    if isDrvLike nix-seal || typeOf nix-seal == "path" || (isString nix-seal && inStore nix-seal)
    then "${nix-seal}/bin/nix-seal"
    else throw "nix-seal's Nix functions: nix-seal must be a derivation or a path holding bin/nix-seal, not ${show nix-seal}";

  compressorNames = [ "zstd" "gzip" "xz" "lz4" "none" ];
  # Levels nix-seal accepts (nix-seal initrd --level).
  levelRange = { zstd = [ 1 19 ]; gzip = [ 1 9 ]; xz = [ 0 9 ]; lz4 = [ 1 12 ]; };

  # NIX_SEAL_ZSTD, NIX_SEAL_XZ, NIX_SEAL_LZ4: where nix-seal finds the compressor programs.
  compressorEnv = builtins.listToAttrs (map (name:
    let p = compressors.${name}; in
    if !(elem name [ "zstd" "xz" "lz4" ])
    then throw "nix-seal's Nix functions: compressors.${name}: only zstd, xz and lz4 are programs (gzip is built in)"
    else {
      name = "NIX_SEAL_${if name == "zstd" then "ZSTD" else if name == "xz" then "XZ" else "LZ4"}";
      value = if isDrvLike p then "${p}/bin/${name}" else "${p}";
    }) (attrNames compressors));

  # A store path argument (root, object, prepended file): a derivation, a path (copied into the
  # store, as Nix does with paths in derivations) or a string inside the store.
  storeArg = fn: what: v:
    if isDrvLike v || typeOf v == "path" then "${v}"
    else if isString v && inStore v then v
    else throw "${fn}: ${what} ${show v} is not a derivation, a path or a string inside the Nix store ${storeDir}";

  # One seal: a store path (derivation, path in the store, string in the store: string context
  # makes it an input of the build) or a name glob (a string without '/', e.g. "*.iso").
  sealArg = fn: s:
    let bad = why: throw "${fn}: seal ${show s} ${why}; a seal is a store path or a derivation (seals = [ myIso ]), or a name glob: a string without '/', e.g. \"*.iso\""; in
    if isDrvLike s then "${s}"
    else if typeOf s == "path" then
      (let p = toString s; in
       if inStore p then p
       # A symlink outside the store (./result): resolved at evaluation time to the store path it
       # points to (builtins.storePath follows it, and makes that path an input of the build).
       else if (builtins.readDir (dirOf p)).${baseNameOf p} or null == "symlink" then builtins.storePath p
       else bad "is neither inside the Nix store ${storeDir} nor a symlink into it (like ./result)")
    else if isString s then
      (if s == "" then bad "is empty"
       else if !(hasSlash s) then s
       else if inStore s then s
       else bad "contains '/' but is not inside the Nix store ${storeDir}")
    else if isAttrs s then bad "is an attribute set, not a derivation"
    else bad "is ${if typeOf s == "int" then "an integer" else "a ${typeOf s}"}, neither a path nor a glob";

  sealArgs = fn: seals:
    if !(isList seals) then throw "${fn}: seals must be a list, not ${show seals}"
    else concatLists (map (s: [ "--seal" (sealArg fn s) ]) seals);

  # sealImages = true: nix-seal seals every path of the closure whose bytes are a self-contained
  # image (ISO, disk image, squashfs, archive…), like --seal-images.
  sealImagesFlags = fn: sealImages:
    if sealImages == true then [ "--seal-images" ]
    else if sealImages == false then [ ]
    else throw "${fn}: sealImages must be true or false, not ${show sealImages}";

  # noSeals: exceptions to every seal, declared or detected (--no-seal); same forms as seals.
  noSealArgs = fn: noSeals:
    if !(isList noSeals) then throw "${fn}: noSeals must be a list, not ${show noSeals}"
    else concatLists (map (s: [ "--no-seal" (sealArg fn s) ]) noSeals);

  # The exportReferencesGraph files: one per path, graph-0, graph-1, … in the build directory.
  graphNames = n: genList (i: "graph-${toString i}") n;
  exportGraph = paths: concatLists (genList (i: [ "graph-${toString i}" (elemAt paths i) ]) (length paths));
  storeFlag = n: [ "--store" "export-graph:${concatStringsSep "," (graphNames n)}" ];

  # Forces the checks before anything of the derivation is used (even .name or .outPath).
  checked = checks: drv: builtins.deepSeq checks drv;

in
{
  # nixpkgs' closureInfo, sealed: $out/registration, $out/store-paths, $out/total-nar-size (and
  # $out/seals.json: what each seal erased) for the sealed closure of rootPaths.
  sealedClosureInfo =
    { rootPaths, seals ? [ ], sealImages ? false, noSeals ? [ ], name ? "closure-info" }:
    let
      fn = "sealedClosureInfo";
      roots =
        if !(isList rootPaths) then throw "${fn}: rootPaths must be a list, not ${show rootPaths}"
        else if rootPaths == [ ] then throw "${fn}: rootPaths is empty"
        else map (storeArg fn "root") rootPaths;
      sealFlags = sealArgs fn seals ++ sealImagesFlags fn sealImages ++ noSealArgs fn noSeals;
    in
    checked [ sealFlags roots ] (derivation {
      inherit name system;
      builder = bin;
      args = [ "closure-info" ] ++ storeFlag (length roots) ++ sealFlags
        ++ [ "-o" (builtins.placeholder "out") "--" ] ++ roots;
      exportReferencesGraph = exportGraph roots;
      HOME = "/homeless-shelter";
      preferLocalBuild = true;
      allowSubstitutes = false;
    });

  # nixpkgs' makeInitrd, sealed: $out/initrd, the sealed closure of every object in contents as a
  # reproducible compressed cpio archive (byte-identical to makeInitrd's pipeline).
  makeSealedInitrd =
    { contents
    , seals ? [ ]
    , sealImages ? false
    , noSeals ? [ ]
    , compressor ? "zstd"
    , compressorLevel ? null
    , prepend ? [ ]
    , name ? "initrd"
    }:
    let
      fn = "makeSealedInitrd";
      entries =
        if !(isList contents) then throw "${fn}: contents must be a list of { object; symlink ? null; }, not ${show contents}"
        else if contents == [ ] then throw "${fn}: contents is empty"
        else map (e:
          if !(isAttrs e) || isDrvLike e || !(e ? object)
          then throw "${fn}: each contents entry must be { object; symlink ? null; }, not ${show e}"
          else
            let symlink = e.symlink or null; in
            if symlink != null && !(isString symlink && hasPrefix "/" symlink && symlink != "/")
            then throw "${fn}: symlink ${show symlink} of ${show e.object} must be an absolute path inside the image, like \"/init\""
            else
              # makeInitrd's `suffix` (its "none" means none): the link points at object + suffix.
              let suffix = if (e.suffix or "none") == "none" then "" else e.suffix; in
              if !(isString suffix) then throw "${fn}: suffix ${show suffix} of ${show e.object} must be a string"
              else { object = storeArg fn "object" e.object; inherit symlink; target = "${storeArg fn "object" e.object}${suffix}"; }) contents;

      plain = filter (e: e.symlink == null) entries;
      linked = filter (e: e.symlink != null) entries;
      inits = filter (e: e.symlink == "/init") linked;
      init = if inits == [ ] then null else head inits;
      # Every symlink but the first /init; a second /init would be ambiguous.
      links = filter (e: init == null || e != init) linked;
      dests = map (e: e.symlink) linked;
      uniqueDests = builtins.foldl' (acc: d:
        if elem d acc then throw "${fn}: two contents entries have symlink ${show d}" else acc ++ [ d ]) [ ] dests;

      compressorOk =
        if isString compressor && elem compressor compressorNames then true
        else throw "${fn}: unknown compressor ${show compressor}; valid compressors are ${concatStringsSep ", " compressorNames}";
      levelFlags =
        if compressorLevel == null then [ ]
        else if !(isInt compressorLevel) then throw "${fn}: compressorLevel must be an integer or null, not ${show compressorLevel}"
        else if compressor == "none" then throw "${fn}: compressor \"none\" takes no compressorLevel"
        else
          let r = levelRange.${compressor}; in
          if compressorLevel < elemAt r 0 || compressorLevel > elemAt r 1
          then throw "${fn}: compressorLevel ${toString compressorLevel} is out of range: ${compressor} takes ${toString (elemAt r 0)} to ${toString (elemAt r 1)}"
          else [ "--level" (toString compressorLevel) ];
      prependFlags =
        if !(isList prepend) then throw "${fn}: prepend must be a list of cpio archives, not ${show prepend}"
        else concatLists (map (p: [ "--prepend" (storeArg fn "prepend" p) ]) prepend);

      sealFlags = sealArgs fn seals ++ sealImagesFlags fn sealImages ++ noSealArgs fn noSeals;
      # Every object is in the graph: roots, the init and the link targets.
      graphPaths = map (e: e.object) (plain ++ linked);
    in
    checked [ compressorOk levelFlags prependFlags sealFlags uniqueDests graphPaths ] (derivation ({
      inherit name system;
      builder = bin;
      args = [ "initrd" ] ++ storeFlag (length graphPaths) ++ sealFlags
        ++ (if init == null then [ ] else [ "--init" init.target ])
        ++ concatLists (map (e: [ "--link" "${e.symlink}=${e.target}" ]) links)
        ++ prependFlags
        ++ [ "--compress" compressor ] ++ levelFlags
        ++ [ "--mkdir" "-o" "${builtins.placeholder "out"}/initrd" "--" ] ++ map (e: e.object) plain;
      exportReferencesGraph = exportGraph graphPaths;
      HOME = "/homeless-shelter";
    } // compressorEnv));
}
