/** Every workflow the lensflow worker registers, and the signals and queries they handle. */
export { cancelSignal, progressQuery, trainingPipeline } from './trainingPipeline';
