"""Evaluate every page of the app (what `reflex run` compiles), without building the frontend.

A view that refers to a missing state var, passes a wrong Var type or fails to render raises
here in seconds, instead of during the production build. Used by the test suite.
"""

from __future__ import annotations

import sys


def main() -> int:
    from creative_studio.creative_studio import app

    app._apply_decorated_pages()
    routes = list(app._unevaluated_pages)
    for route in routes:
        app._compile_page(route, save_page=True)
    app._validate_var_dependencies()
    print(f"{len(routes)} pages evaluated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
