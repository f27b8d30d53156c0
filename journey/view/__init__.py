"""The view: rich renderables for events, trees and reports (`render`), replay of a
recorded session (`replay`) and the terminal browser (`browse`). With `cli/`, the only
room that draws; the others emit data and progress events for it."""
